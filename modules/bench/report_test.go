package bench_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/imsrv/imsrv/modules/bench"
)

func chatReport(c bench.Counts) *bench.Report {
	return &bench.Report{
		Scenario: bench.ScenarioChat,
		Gate:     "http://127.0.0.1:8080",
		Elapsed:  bench.Seconds(12500 * time.Millisecond),
		Chat: &bench.ChatResult{
			Counts:     c,
			Elapsed:    bench.Seconds(10 * time.Second),
			Rate:       float64(c.Delivered) / 10,
			AckLatency: bench.Summary{Count: 3, P50: 2 * ms, P90: 3 * ms, P99: 4 * ms, Max: 5 * ms},
		},
	}
}

func TestBenchReportProblems(t *testing.T) {
	clean := chatReport(bench.Counts{Sent: 100, Acked: 100, Delivered: 100})
	if p := clean.Problems(); len(p) != 0 {
		t.Fatalf("clean run: Problems = %v", p)
	}
	bad := chatReport(bench.Counts{Sent: 100, Acked: 99, Unacked: 1, Delivered: 97, Lost: 2, Duplicated: 3, Reordered: 4})
	got := strings.Join(bad.Problems(), "; ")
	for _, want := range []string{"2 texts lost", "3 texts duplicated", "4 texts reordered", "1 texts unacknowledged"} {
		if !strings.Contains(got, want) {
			t.Errorf("Problems = %q, missing %q", got, want)
		}
	}
	conn := &bench.Report{Connect: &bench.ConnectResult{Requested: 10, Connected: 8, Failed: 2, Dropped: 1}}
	if got := strings.Join(conn.Problems(), "; "); !strings.Contains(got, "2 connections failed") || !strings.Contains(got, "1 connections dropped") {
		t.Errorf("connect Problems = %q", got)
	}
}

func TestBenchReportJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := chatReport(bench.Counts{Sent: 5, Acked: 5, Delivered: 4, Lost: 1}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenario string  `json:"scenario"`
		ElapsedS float64 `json:"elapsed_s"`
		Chat     struct {
			Sent, Acked, Delivered, Lost, Duplicated, Reordered int
			ElapsedS                                            float64 `json:"elapsed_s"`
			MsgsPerS                                            float64 `json:"msgs_per_s"`
			AckLatency                                          struct {
				P99MS float64 `json:"p99_ms"`
			} `json:"ack_latency"`
		} `json:"chat"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("report JSON does not decode: %v\n%s", err, buf.Bytes())
	}
	if got.Scenario != "chat" || got.ElapsedS != 12.5 || got.Chat.Sent != 5 || got.Chat.Lost != 1 ||
		got.Chat.ElapsedS != 10 || got.Chat.MsgsPerS != 0.4 || got.Chat.AckLatency.P99MS != 4 ||
		len(got.Problems) != 1 {
		t.Fatalf("report JSON = %+v\n%s", got, buf.Bytes())
	}
	// No problems is an empty list, not null.
	buf.Reset()
	if err := chatReport(bench.Counts{}).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"problems": []`) {
		t.Fatalf("a clean report's problems are not []:\n%s", buf.String())
	}
}

func TestBenchReportText(t *testing.T) {
	var buf bytes.Buffer
	r := chatReport(bench.Counts{Sent: 12345, Acked: 12345, Delivered: 12345})
	r.Server = &bench.Memory{Source: "http://x/metrics", RSSBefore: 50 << 20, RSSAfter: 60 << 20,
		ConnsBefore: 0, ConnsAfter: 2, PerConn: 4096}
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"imsrv bench: chat against http://127.0.0.1:8080",
		"12,345 sent, 12,345 acknowledged",
		"lost / duplicated / reordered  0 / 0 / 0",
		"p50 2.00ms  p90 3.00ms  p99 4.00ms  max 5.00ms  (3 samples)",
		"50.0 MiB → 60.0 MiB",
		"4.0 KiB",
		"result",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}
