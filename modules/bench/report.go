package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run. It renders as a table (WriteText) and as
// JSON (field names below; durations in seconds or milliseconds as named).
type Report struct {
	Scenario string    `json:"scenario"`
	Gate     string    `json:"gate"`
	Shard    string    `json:"shard,omitempty"`
	Params   Params    `json:"params"`
	Started  time.Time `json:"started"`
	Elapsed  Seconds   `json:"elapsed_s"`

	Setup     Setup     `json:"setup"`
	FileLimit FileLimit `json:"file_limit"`

	Connect *ConnectResult `json:"connect,omitempty"`
	Chat    *ChatResult    `json:"chat,omitempty"`
	Login   *LoginResult   `json:"login,omitempty"`
	Server  *Memory        `json:"server_memory,omitempty"`
	CPU     []CPU          `json:"cpu,omitempty"`

	Warnings []string `json:"warnings,omitempty"`
}

// Params are the run's settings after defaults.
type Params struct {
	Prefix      string   `json:"prefix"`
	First       int      `json:"first"`
	Users       int      `json:"users,omitempty"`
	Pairs       int      `json:"pairs,omitempty"`
	Rate        float64  `json:"rate"`
	Concurrency int      `json:"concurrency"`
	Window      int      `json:"window,omitempty"`
	TextSize    int      `json:"text_size,omitempty"`
	Duration    Seconds  `json:"duration_s"`
	Count       int      `json:"count,omitempty"`
	Heartbeat   Seconds  `json:"heartbeat_s"`
	Sources     []string `json:"sources,omitempty"`
}

// Setup is the cost of preparing the run.
type Setup struct {
	Users         int     `json:"users"`   // provisioned or reused
	Created       int     `json:"created"` // of which new
	ProvisionTime Seconds `json:"provision_s"`
	TokenTime     Seconds `json:"chat_logins_s"` // time in /admin/login (connect, chat), overlapping the connecting
}

// CPU is the CPU time used during one phase of a run: "ramp" and "hold"
// (connect), "send" (chat: sending and draining), "login". On a machine
// shared by the server and the bench, it shows who used the cores.
type CPU struct {
	Phase  string   `json:"phase"`
	Wall   Seconds  `json:"wall_s"`
	Server *Seconds `json:"server_s,omitempty"` // with --pid only
	Bench  Seconds  `json:"bench_s"`
	// Units is how much work the phase did, for per-unit costs: Unit is
	// "connection", "heartbeat" (estimated: connections × hold / interval),
	// "text" (delivered) or "login".
	Units int    `json:"units"`
	Unit  string `json:"unit"`
	// SharedServer is set when other bench processes (shards) loaded the
	// server at the same time: its CPU is theirs too, so no per-unit
	// server cost is given.
	SharedServer bool `json:"server_shared,omitempty"`
}

// FileLimit is this process's open-file limit.
type FileLimit struct {
	Soft   uint64 `json:"soft"`
	Hard   uint64 `json:"hard"`
	Raised bool   `json:"raised"` // the soft limit was raised to the hard one
}

// Seconds is a duration that encodes as a number of seconds.
type Seconds time.Duration

// D returns the duration.
func (s Seconds) D() time.Duration { return time.Duration(s) }

func (s Seconds) String() string { return time.Duration(s).Round(time.Millisecond).String() }

// MarshalJSON encodes the duration in seconds, to the microsecond.
func (s Seconds) MarshalJSON() ([]byte, error) {
	return json.Marshal(math.Round(time.Duration(s).Seconds()*1e6) / 1e6)
}

// ConnectResult is the connect scenario's outcome.
type ConnectResult struct {
	Requested int            `json:"requested"`
	Connected int            `json:"connected"` // logged in (1006 with error 0)
	Failed    int            `json:"failed"`
	Errors    map[string]int `json:"errors,omitempty"` // failures by cause
	// Dropped is how many logged-in connections ended during the hold.
	Dropped  int     `json:"dropped"`
	RampTime Seconds `json:"ramp_s"`
	Rate     float64 `json:"connects_per_s"` // connected / ramp time
	Latency  Summary `json:"connect_latency"`
	HoldTime Seconds `json:"hold_s"`
}

// ChatResult is the chat scenario's outcome.
type ChatResult struct {
	Counts
	SendErrors int `json:"send_errors"` // texts that could not be written
	// Replayed counts pushes of texts sent by earlier runs: a server
	// delivers unconfirmed texts again at login. Not a problem of this run.
	Replayed   int     `json:"replayed"`
	Elapsed    Seconds `json:"elapsed_s"`  // first send to the end of the drain
	Rate       float64 `json:"msgs_per_s"` // delivered / Elapsed
	AckLatency Summary `json:"ack_latency"`
	PushLat    Summary `json:"push_latency"`
}

// LoginResult is the login scenario's outcome.
type LoginResult struct {
	Attempts    int            `json:"attempts"`
	OK          int            `json:"ok"`
	Failed      int            `json:"failed"`
	Errors      map[string]int `json:"errors,omitempty"`
	Elapsed     Seconds        `json:"elapsed_s"`
	Rate        float64        `json:"logins_per_s"`
	GateLatency Summary        `json:"gate_latency"` // POST /user_login
	ChatLatency Summary        `json:"chat_latency"` // dial + 1005 → 1006
	Latency     Summary        `json:"latency"`      // both
}

func newReport(cfg Config) *Report {
	r := &Report{
		Scenario: cfg.Scenario,
		Gate:     cfg.Gate,
		Shard:    cfg.Shard.String(),
		Started:  time.Now(),
		Params: Params{
			Prefix: cfg.Prefix, First: cfg.First, Rate: cfg.Rate, Concurrency: cfg.Concurrency,
			Duration: Seconds(cfg.Duration), Count: cfg.Count, Heartbeat: Seconds(cfg.Heartbeat),
		},
	}
	switch cfg.Scenario {
	case ScenarioChat:
		r.Params.Pairs, r.Params.Window, r.Params.TextSize = cfg.Pairs, cfg.Window, cfg.TextSize
	default:
		r.Params.Users = cfg.Users
	}
	if n := len(cfg.Sources); n > 0 {
		r.Params.Sources = []string{cfg.Sources[0].String(), cfg.Sources[n-1].String()}
		if n == 1 {
			r.Params.Sources = r.Params.Sources[:1]
		}
	}
	return r
}

// Problems lists what went wrong in the run: lost, duplicated or reordered
// texts, failed connections or logins. An empty list is a clean run.
func (r *Report) Problems() []string {
	var p []string
	add := func(n int, what string) {
		if n > 0 {
			p = append(p, fmt.Sprintf("%d %s", n, what))
		}
	}
	if c := r.Connect; c != nil {
		add(c.Failed, "connections failed")
		add(c.Dropped, "connections dropped during the hold")
	}
	if c := r.Chat; c != nil {
		add(c.Lost, "texts lost")
		add(c.Duplicated, "texts duplicated")
		add(c.Reordered, "texts reordered")
		add(c.Failed, "texts refused (1018 error)")
		add(c.Unacked, "texts unacknowledged")
		add(c.Unexpected, "unexpected acknowledgements or deliveries")
		add(c.SendErrors, "texts not sent (connection error)")
	}
	if l := r.Login; l != nil {
		add(l.Failed, "logins failed")
	}
	return p
}

// MarshalJSON adds the list of problems.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	out := struct {
		*plain
		Problems []string `json:"problems"`
	}{(*plain)(r), r.Problems()}
	if out.Problems == nil {
		out.Problems = []string{}
	}
	return json.Marshal(out)
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench: write JSON report: %w", err)
	}
	return nil
}

// WriteText writes the report as an aligned table for people.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	head := r.Scenario + " against " + r.Gate
	if r.Shard != "" {
		head += ", shard " + r.Shard
	}
	fmt.Fprintf(tw, "imsrv bench: %s\n", head)
	setup := fmt.Sprintf("%s users, %s new, provisioned in %s", num(r.Setup.Users), num(r.Setup.Created), r.Setup.ProvisionTime)
	if r.Setup.TokenTime > 0 {
		setup += fmt.Sprintf(", %s in /admin/login", r.Setup.TokenTime)
	}
	row("elapsed", "%s (set-up: %s)", r.Elapsed, setup)
	if c := r.Connect; c != nil {
		row("connections", "%s requested, %s connected, %s failed, %s dropped during the hold",
			num(c.Requested), num(c.Connected), num(c.Failed), num(c.Dropped))
		row("connect rate", "%s/s (ramp %s), held %s", num(int(math.Round(c.Rate))), c.RampTime, c.HoldTime)
		row("connect latency", "%s", latency(c.Latency))
		writeErrors(row, c.Errors)
	}
	if c := r.Chat; c != nil {
		row("texts", "%s sent, %s acknowledged, %s refused, %s unacknowledged, %s delivered",
			num(c.Sent), num(c.Acked), num(c.Failed), num(c.Unacked), num(c.Delivered))
		row("lost / duplicated / reordered", "%d / %d / %d  (unexpected %d, send errors %d, replayed from earlier runs %d)",
			c.Lost, c.Duplicated, c.Reordered, c.Unexpected, c.SendErrors, c.Replayed)
		row("throughput", "%s texts/s delivered (over %s)", num(int(math.Round(c.Rate))), c.Elapsed)
		row("send→ACK (1018)", "%s", latency(c.AckLatency))
		row("send→push (1019)", "%s", latency(c.PushLat))
	}
	if l := r.Login; l != nil {
		row("logins", "%s attempted, %s ok, %s failed", num(l.Attempts), num(l.OK), num(l.Failed))
		row("login rate", "%.1f/s (over %s)", l.Rate, l.Elapsed)
		row("/user_login", "%s", latency(l.GateLatency))
		row("chat login", "%s", latency(l.ChatLatency))
		row("login total", "%s", latency(l.Latency))
		writeErrors(row, l.Errors)
	}
	if m := r.Server; m != nil {
		conns := func(n int64) string {
			if n < 0 {
				return "?"
			}
			return num(int(n))
		}
		row("server RSS", "%s → %s (%s → %s connections; from %s)", mib(m.RSSBefore), mib(m.RSSAfter),
			conns(m.ConnsBefore), conns(m.ConnsAfter), m.Source)
		if m.PerConn != 0 {
			row("server memory per connection", "%.1f KiB", m.PerConn/1024)
		}
	}
	for _, c := range r.CPU {
		share := func(d Seconds, perUnit bool) string {
			s := fmt.Sprintf("%s (%.0f%% of a core", d, 100*d.D().Seconds()/max(c.Wall.D().Seconds(), 1e-9))
			if perUnit && c.Units > 0 {
				s += ", " + ms(d.D()/time.Duration(c.Units)) + " per " + c.Unit
			}
			return s + ")"
		}
		line := "bench " + share(c.Bench, true)
		switch {
		case c.Server != nil && c.SharedServer:
			line = "server, all shards " + share(*c.Server, false) + ", " + line
		case c.Server != nil:
			line = "server " + share(*c.Server, true) + ", " + line
		}
		row("CPU, "+c.Phase, "%s over %s", line, c.Wall)
	}
	row("open-file limit", "%d (hard %d)%s", r.FileLimit.Soft, r.FileLimit.Hard, pick(r.FileLimit.Raised, ", raised", ""))
	for _, w := range r.Warnings {
		row("warning", "%s", w)
	}
	problems := r.Problems()
	if len(problems) == 0 {
		row("result", "ok")
	} else {
		row("result", "PROBLEMS: %s", strings.Join(problems, ", "))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	return nil
}

func writeErrors(row func(k, format string, args ...any), errs map[string]int) {
	for _, k := range slices.Sorted(maps.Keys(errs)) {
		row("  error", "%s × %s", num(errs[k]), k)
	}
}

func latency(s Summary) string {
	if s.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (%s samples)",
		ms(s.P50), ms(s.P90), ms(s.P99), ms(s.Max), num(s.Count))
}

func ms(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return d.Round(time.Millisecond).String()
	}
}

func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

// num formats n with thousands separators.
func num(n int) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
