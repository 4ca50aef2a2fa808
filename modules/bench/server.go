package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Metric names read from the server's /metrics.
const (
	metricRSS   = "process_resident_memory_bytes"
	metricConns = "imsrv_chat_connections"
)

// ServerProbe reads the memory, connection count and CPU time of a server,
// or of all the processes of a split deployment (summed): the resident set
// size from /proc/<pid>/status (VmRSS) for local PIDs, else from the
// Prometheus metrics (process_resident_memory_bytes); the open chat
// connections from the metrics (imsrv_chat_connections) when every URL can be
// read; CPU time from /proc/<pid>/stat.
type ServerProbe struct {
	MetricsURLs []string // e.g. http://127.0.0.1:8080/metrics; none = no metrics
	PIDs        []int    // local server processes
	HTTP        *http.Client
}

// ServerSample is one reading. Conns is -1 when the metrics were not
// available, CPU when no PID was given.
type ServerSample struct {
	At    time.Time
	RSS   int64 // bytes
	Conns int64
	CPU   time.Duration // user + system CPU time used so far
}

// Sample takes one reading.
func (p ServerProbe) Sample(ctx context.Context) (ServerSample, error) {
	s := ServerSample{At: time.Now(), RSS: -1, Conns: -1, CPU: -1}
	var metricsRSS, conns int64
	var metricsErr error
	haveRSS, haveConns := len(p.MetricsURLs) > 0, len(p.MetricsURLs) > 0
	for _, u := range p.MetricsURLs {
		m, err := p.metrics(ctx, u)
		if err != nil {
			metricsErr = err
			haveRSS, haveConns = false, false
			break
		}
		v, ok := m[metricRSS]
		metricsRSS += int64(v)
		haveRSS = haveRSS && ok
		v, ok = m[metricConns]
		conns += int64(v)
		haveConns = haveConns && ok
	}
	if haveConns {
		s.Conns = conns
	}
	if len(p.PIDs) > 0 {
		var rss int64
		var cpu time.Duration
		for _, pid := range p.PIDs {
			r, err := procRSS(pid)
			if err != nil {
				return s, err
			}
			c, err := procCPU(pid)
			if err != nil {
				return s, err
			}
			rss, cpu = rss+r, cpu+c
		}
		s.RSS, s.CPU = rss, cpu
		return s, nil
	}
	if metricsErr != nil {
		return s, metricsErr
	}
	if !haveRSS {
		return s, fmt.Errorf("bench: the metrics do not all have %s (use --pid on the server's host)", metricRSS)
	}
	s.RSS = metricsRSS
	return s, nil
}

// serverCPU returns the CPU time the PIDs have used so far.
func (p ServerProbe) serverCPU() (time.Duration, bool) {
	if len(p.PIDs) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, pid := range p.PIDs {
		c, err := procCPU(pid)
		if err != nil {
			return 0, false
		}
		total += c
	}
	return total, true
}

func (p ServerProbe) metrics(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: metrics: %w", err)
	}
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bench: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: metrics: GET %s: HTTP %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body, metricRSS, metricConns)
}

// parseMetrics reads the named unlabelled samples from a Prometheus text
// exposition.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		for _, want := range names {
			if name != want {
				continue
			}
			value, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // an optional timestamp follows
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				return nil, fmt.Errorf("bench: metrics: %s: bad value %q", name, value)
			}
			out[name] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: metrics: %w", err)
	}
	return out, nil
}

// procRSS reads VmRSS of a local process, in bytes.
func procRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("bench: server memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	return parseVmRSS(f)
}

// clockTick is the unit of the CPU times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// procCPU reads the user + system CPU time of a local process.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("bench: server CPU of pid %d: %w", pid, err)
	}
	return parseStatCPU(string(b))
}

// parseStatCPU reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) may hold spaces and
// parentheses, so fields are counted from its closing parenthesis.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: unexpected /proc stat line %.80q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: unexpected /proc stat line %.80q", stat)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: unexpected /proc stat line %.80q", stat)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// parseVmRSS finds the "VmRSS:  1234 kB" line of /proc/<pid>/status.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("bench: unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: unexpected VmRSS line %q", sc.Text())
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("bench: read VmRSS: %w", err)
	}
	return 0, errors.New("bench: no VmRSS in the process status")
}

// Memory is the server's memory before and after a scenario loaded it.
type Memory struct {
	Source      string `json:"source"` // where RSS was read: metrics URLs or /proc/<pid>/status files
	RSSBefore   int64  `json:"rss_before_bytes"`
	RSSAfter    int64  `json:"rss_after_bytes"`
	ConnsBefore int64  `json:"server_conns_before"` // the server's imsrv_chat_connections; -1 = unknown
	ConnsAfter  int64  `json:"server_conns_after"`
	// PerConn is the RSS growth divided by the growth of the server's own
	// connection count (or, without it, by the connections this bench
	// process opened); 0 when unknown.
	PerConn float64 `json:"per_conn_bytes"`
}

// newMemory compares two samples; opened is the number of connections this
// process opened in between, used when the server's count is not available.
func (p ServerProbe) newMemory(before, after ServerSample, opened int) *Memory {
	m := &Memory{
		Source:    strings.Join(p.MetricsURLs, ", "),
		RSSBefore: before.RSS, RSSAfter: after.RSS,
		ConnsBefore: before.Conns, ConnsAfter: after.Conns,
	}
	if len(p.PIDs) > 0 {
		var src []string
		for _, pid := range p.PIDs {
			src = append(src, "/proc/"+strconv.Itoa(pid)+"/status")
		}
		m.Source = strings.Join(src, ", ")
	}
	if before.RSS < 0 || after.RSS < 0 {
		return m
	}
	n := int64(opened)
	if before.Conns >= 0 && after.Conns >= 0 {
		n = after.Conns - before.Conns
	}
	if n > 0 {
		m.PerConn = float64(after.RSS-before.RSS) / float64(n)
	}
	return m
}
