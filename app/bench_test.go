package app_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/bench"
)

// runBench runs one bench scenario against ta and fails the test on an
// error. The report is returned whatever its counts.
func runBench(t *testing.T, ta *testApp, cfg bench.Config) *bench.Report {
	t.Helper()
	cfg.Gate, cfg.AdminToken = ta.URL, testAdminToken
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := bench.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("bench %s: %v", cfg.Scenario, err)
	}
	if testing.Verbose() {
		var b strings.Builder
		r.WriteText(&b)
		t.Logf("%s", b.String())
	}
	return r
}

func wantNoProblems(t *testing.T, r *bench.Report) {
	t.Helper()
	if p := r.Problems(); len(p) > 0 {
		t.Fatalf("bench %s had problems: %v", r.Scenario, p)
	}
}

// TestBenchScenarios runs each scenario briefly against an in-process
// server: connections all log in and stay up, every text is acknowledged and
// delivered exactly once and in order, and password logins succeed. Counts
// only; no timing is asserted.
func TestBenchScenarios(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b, "IMSRV_ADMIN_TOKEN="+testAdminToken)

		t.Run("connect", func(t *testing.T) {
			r := runBench(t, ta, bench.Config{
				Scenario: bench.ScenarioConnect, Users: 12, Concurrency: 4,
				Duration: 500 * time.Millisecond, Heartbeat: 100 * time.Millisecond,
			})
			wantNoProblems(t, r)
			c := r.Connect
			if c.Requested != 12 || c.Connected != 12 || c.Latency.Count != 12 {
				t.Fatalf("connect = %+v, want 12 connected", c)
			}
			m := r.Server
			if m == nil || m.RSSBefore <= 0 || m.RSSAfter <= 0 || m.ConnsAfter-m.ConnsBefore != 12 {
				t.Fatalf("server memory = %+v, want RSS read and 12 more server connections", m)
			}
			if r.Setup.Users != 12 || r.Setup.Created != 12 {
				t.Fatalf("set-up = %+v, want 12 users created", r.Setup)
			}
		})

		t.Run("connect shards", func(t *testing.T) {
			// Two processes' worth of shards share one run of 10 users: each
			// drives its own 5, and the second run reuses the first's accounts.
			var wg sync.WaitGroup
			reports := make([]*bench.Report, 2)
			errs := make([]error, 2)
			for i := range reports {
				wg.Go(func() {
					first, n := bench.Shard{Index: i, Count: 2}.Slice(10)
					reports[i], errs[i] = bench.Run(context.Background(), bench.Config{
						Scenario: bench.ScenarioConnect, Gate: ta.URL, AdminToken: testAdminToken,
						Prefix: "bench-connect-", Users: n, First: first,
						Shard: bench.Shard{Index: i, Count: 2}, Duration: 300 * time.Millisecond,
					})
				})
			}
			wg.Wait()
			for i, r := range reports {
				if errs[i] != nil {
					t.Fatalf("shard %d: %v", i, errs[i])
				}
				wantNoProblems(t, r)
				if r.Connect.Connected != 5 || r.Shard != []string{"0/2", "1/2"}[i] {
					t.Fatalf("shard %d: connected %d (shard %q), want 5", i, r.Connect.Connected, r.Shard)
				}
				if r.Setup.Created != 0 {
					t.Fatalf("shard %d created %d users, want the connect run's users reused", i, r.Setup.Created)
				}
			}
		})

		t.Run("chat", func(t *testing.T) {
			r := runBench(t, ta, bench.Config{
				Scenario: bench.ScenarioChat, Pairs: 3, Window: 4, Duration: time.Second,
			})
			wantNoProblems(t, r)
			c := r.Chat
			if c.Sent == 0 || c.Acked != c.Sent || c.Delivered != c.Sent ||
				c.Lost != 0 || c.Duplicated != 0 || c.Reordered != 0 || c.Unexpected != 0 {
				t.Fatalf("chat counts = %+v, want every text acknowledged and delivered once, in order", c.Counts)
			}
			if c.AckLatency.Count != c.Sent || c.PushLat.Count != c.Sent {
				t.Fatalf("latency samples: %d ACK, %d push, want %d each", c.AckLatency.Count, c.PushLat.Count, c.Sent)
			}

			// Again with the same (now befriended) users, paced and counted.
			r = runBench(t, ta, bench.Config{Scenario: bench.ScenarioChat, Pairs: 3, Count: 60, Rate: 600})
			wantNoProblems(t, r)
			if c := r.Chat; c.Sent != 60 || c.Delivered != 60 || c.Replayed != 0 || r.Setup.Created != 0 {
				t.Fatalf("second chat run: counts %+v, %d replayed, %d users created; want 60 delivered, "+
					"nothing of the first run delivered again, users reused", c.Counts, c.Replayed, r.Setup.Created)
			}
		})

		t.Run("login", func(t *testing.T) {
			r := runBench(t, ta, bench.Config{Scenario: bench.ScenarioLogin, Users: 2, Concurrency: 2, Count: 6})
			wantNoProblems(t, r)
			if l := r.Login; l.OK != 6 || l.Attempts != 6 || l.Latency.Count != 6 {
				t.Fatalf("login = %+v, want 6 logins", l)
			}
		})
	})
}

// TestBenchCommand runs `imsrv bench chat --json` in-process and reads its
// report.
func TestBenchCommand(t *testing.T) {
	ta := startApp(t, backends()[0], "IMSRV_ADMIN_TOKEN="+testAdminToken)
	cmdIsolate(t)
	t.Setenv("IMSRV_ADMIN_TOKEN", testAdminToken)
	code, stdout, stderr := cmdRun(t, "bench", "chat", "--gate", ta.URL, "--pairs", "2", "--count", "40", "--json")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var rep struct {
		Scenario string `json:"scenario"`
		Chat     struct {
			Sent, Delivered, Lost, Duplicated, Reordered int
		} `json:"chat"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v\n%s", err, stdout)
	}
	if rep.Scenario != "chat" || rep.Chat.Sent != 40 || rep.Chat.Delivered != 40 || len(rep.Problems) != 0 {
		t.Fatalf("report = %+v", rep)
	}

	// A table by default; the shard flag takes a slice of the pairs.
	code, stdout, stderr = cmdRun(t, "bench", "chat", "--gate", ta.URL, "--pairs", "4", "--shard", "1/2", "--count", "10")
	if code != 0 || !strings.Contains(stdout, "shard 1/2") || !strings.Contains(stdout, "lost / duplicated / reordered") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}

	// Bad usage is refused before anything is sent.
	for _, args := range [][]string{
		{"bench", "chat", "--gate", ta.URL, "--shard", "2/2"},
		{"bench", "connect", "--gate", "ftp://x"},
		{"bench", "connect", "--gate", ta.URL, "--source", "not-an-ip"},
		{"bench", "login", "--gate", ta.URL, "--users", "2", "--concurrency", "4"},
	} {
		if code, _, stderr := cmdRun(t, args...); code != 1 || !strings.Contains(stderr, "bench") {
			t.Errorf("%v: exit %d, stderr %q; want 1 with a message", args, code, stderr)
		}
	}
	t.Setenv("IMSRV_ADMIN_TOKEN", "")
	if code, _, stderr := cmdRun(t, "bench", "connect", "--gate", ta.URL); code != 1 || !strings.Contains(stderr, "IMSRV_ADMIN_TOKEN") {
		t.Errorf("without a token: exit %d, stderr %q", code, stderr)
	}
}

// TestBenchAdminAPIOff: against a server without the admin API the bench
// stops at once and says why.
func TestBenchAdminAPIOff(t *testing.T) {
	ta := startApp(t, backends()[0])
	_, err := bench.Run(context.Background(), bench.Config{
		Scenario: bench.ScenarioConnect, Gate: ta.URL, AdminToken: testAdminToken, Users: 1,
	})
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "IMSRV_ADMIN_TOKEN") {
		t.Fatalf("bench against a server without the admin API: %v", err)
	}
}
