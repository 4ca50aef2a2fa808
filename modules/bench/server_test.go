package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

const metricsText = `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 5.4308864e+07
# HELP imsrv_chat_connections Open client connections.
# TYPE imsrv_chat_connections gauge
imsrv_chat_connections 19000
imsrv_chat_connections_other{a="b"} 7
go_goroutines 19042 1700000000000
`

func TestBenchServerProbeMetrics(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(metricsText))
	}))
	defer srv.Close()
	p := ServerProbe{MetricsURLs: []string{srv.URL + "/metrics"}, HTTP: srv.Client()}
	s, err := p.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS != 54308864 || s.Conns != 19000 {
		t.Fatalf("Sample = %+v, want RSS 54308864, conns 19000", s)
	}

	// Several processes (a split deployment) are summed.
	p.MetricsURLs = []string{srv.URL + "/metrics", srv.URL + "/metrics"}
	if s, err = p.Sample(context.Background()); err != nil || s.RSS != 2*54308864 || s.Conns != 38000 {
		t.Fatalf("Sample of two processes = %+v, %v; want the sums", s, err)
	}

	p.MetricsURLs = []string{srv.URL + "/metrics", srv.URL + "/nothing"}
	if _, err := p.Sample(context.Background()); err == nil {
		t.Fatal("Sample of a 404 succeeded")
	}
}

func TestBenchServerProbePID(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc on this system")
	}
	p := ServerProbe{PIDs: []int{os.Getpid()}}
	s, err := p.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.Conns != -1 || s.CPU < 0 {
		t.Fatalf("Sample of our own pid = %+v, want a positive RSS, a CPU time and unknown conns", s)
	}
}

func TestBenchParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (imsrv (all) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 11 0 100 0 0\n"
	got, err := parseStatCPU(line)
	if err != nil || got != (1234+567)*clockTick {
		t.Fatalf("parseStatCPU = %v, %v; want %v", got, err, (1234+567)*clockTick)
	}
	for _, bad := range []string{"", "4242 imsrv S 1", "4242 (imsrv) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a b"} {
		if _, err := parseStatCPU(bad); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded", bad)
		}
	}
}

func TestBenchParseVmRSS(t *testing.T) {
	got, err := parseVmRSS(strings.NewReader("Name:\timsrv\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"))
	if err != nil || got != 12345*1024 {
		t.Fatalf("parseVmRSS = %d, %v; want %d", got, err, 12345*1024)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\n", "VmRSS:\tlots kB\n"} {
		if _, err := parseVmRSS(strings.NewReader(bad)); err == nil {
			t.Errorf("parseVmRSS(%q) succeeded", bad)
		}
	}
}

func TestBenchMemoryPerConn(t *testing.T) {
	p := ServerProbe{MetricsURLs: []string{"http://x/metrics"}}
	// The server's own count wins over what this process opened: another
	// shard's connections are in the RSS growth too.
	m := p.newMemory(ServerSample{RSS: 100 << 20, Conns: 0}, ServerSample{RSS: 100<<20 + 19000*4096, Conns: 19000}, 9500)
	if m.PerConn != 4096 {
		t.Fatalf("PerConn = %v, want 4096", m.PerConn)
	}
	// Without the server's count, this process's connections are used.
	m = ServerProbe{PIDs: []int{42}}.newMemory(ServerSample{RSS: 1000, Conns: -1}, ServerSample{RSS: 1000 + 10*3000, Conns: -1}, 10)
	if m.PerConn != 3000 || m.Source != "/proc/42/status" {
		t.Fatalf("Memory = %+v, want 3000 per connection from /proc/42/status", m)
	}
	// Unknown RSS, or no new connections: no figure rather than a wrong one.
	if m := p.newMemory(ServerSample{RSS: -1, Conns: 0}, ServerSample{RSS: 5, Conns: 5}, 5); m.PerConn != 0 {
		t.Fatalf("PerConn with an unknown RSS = %v, want 0", m.PerConn)
	}
	if m := p.newMemory(ServerSample{RSS: 1, Conns: 5}, ServerSample{RSS: 9, Conns: 5}, 5); m.PerConn != 0 {
		t.Fatalf("PerConn without new connections = %v, want 0", m.PerConn)
	}
}
