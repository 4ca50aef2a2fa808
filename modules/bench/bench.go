// Package bench is imsrv's load generator, the engine of `imsrv bench`. It
// drives a running imsrv over the real protocol (the gate's HTTP API and the
// chat nodes' TCP frames, through package chatclient) and reports what sizing
// a deployment needs:
//
//   - connect: N logged-in connections opened at a target rate and held
//     with heartbeats; connects/s, failures, and the server's memory per
//     connection;
//   - chat: P pairs of friends exchanging texts at a target rate or as fast
//     as the server allows; texts sent, acknowledged, delivered, lost,
//     duplicated and reordered (see Tracker), throughput, and send→ACK and
//     send→push latency percentiles;
//   - login: the password login path (/user_login, then the chat login) per
//     second.
//
// Users are provisioned through the gate's admin API (no mail, no password
// hashing except for the login scenario's accounts) and reused by later runs
// with the same prefix. Several bench processes can share one run: each
// takes a disjoint slice of the users or pairs (Shard).
//
// The bench only talks to the gate it is given and to the chat nodes that
// gate hands out, and it stops by itself after a duration or a count.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"
)

// Scenarios.
const (
	ScenarioConnect = "connect"
	ScenarioChat    = "chat"
	ScenarioLogin   = "login"
)

// Batching of admin API requests: users or uids per request (within the
// gate's AdminMaxBatch and its 64 KiB body limit) and requests in flight.
const (
	adminBatch    = 250
	adminParallel = 4
)

// connectTimeout bounds one connection attempt: dial plus chat login.
const connectTimeout = 15 * time.Second

// Config is one bench run. Zero values get the defaults documented on each
// field.
type Config struct {
	Scenario   string // connect, chat or login
	Gate       string // the gate's base URL, e.g. http://127.0.0.1:8080
	AdminToken string // the server's IMSRV_ADMIN_TOKEN

	// Prefix starts the name of every user this run provisions; runs with
	// the same prefix reuse the same accounts. Default "bench-<scenario>-".
	Prefix string
	// Users is how many users this process drives (connect: connections;
	// login: accounts logged in round-robin). Default 100 (connect), 10 (login).
	Users int
	// Pairs is how many pairs of friends this process drives (chat). Default 1.
	Pairs int
	// First is the index of this process's first user (connect, login) or
	// pair (chat), for runs shared by several processes (see Shard).
	First int

	// Rate is the target: connects/s (connect), texts/s over all senders
	// (chat), logins/s (login); 0 = as fast as the server allows.
	Rate float64
	// Concurrency is how many connections are being opened at once
	// (connect, chat set-up) or how many login loops run (login).
	// Default 64 (connect, chat), 4 (login).
	Concurrency int
	// Window is how many texts each chat sender may have awaiting their
	// acknowledgement; default 1 (send, wait for the 1018, send the next).
	Window int
	// TextSize is the length in bytes of each text's content; default 32.
	TextSize int

	// Duration is how long connections are held after they are all open
	// (connect), or how long texts are sent or logins made (chat, login).
	// Default 30s (connect), 10s (chat, login).
	Duration time.Duration
	// Count, when positive, stops chat after this many texts and login after
	// this many logins (whichever of Duration and Count comes first).
	Count int
	// Heartbeat is the interval of every connection's heartbeat (1023);
	// default 10s, as the llfc clients.
	Heartbeat time.Duration
	// Drain is how long chat waits, after sending stops, for outstanding
	// acknowledgements and deliveries; default 10s.
	Drain time.Duration

	// Sources are the local addresses connections are spread over
	// (round-robin); empty = the kernel's choice.
	Sources []netip.Addr
	// MetricsURLs are the server's Prometheus endpoints for its memory and
	// connection count: one per process of a split deployment (its chat
	// nodes), summed. Default the gate URL + /metrics; "-" = none.
	MetricsURLs []string
	// PIDs, when set, are the local server processes whose memory (VmRSS)
	// and CPU time are read from /proc, summed; the metrics then give only
	// the connection count.
	PIDs []int

	// Shard is reported with the results; First and Users or Pairs must
	// already be this shard's slice.
	Shard Shard

	// Progress, when not nil, gets a live progress line every second
	// (carriage-return terminated; meant for a terminal).
	Progress io.Writer
	Logger   *slog.Logger
	// HTTPClient is used for the gate and the metrics; default a client
	// with a 60s timeout.
	HTTPClient *http.Client
}

// MaxTextSize bounds Config.TextSize, well within what a server accepts in
// one text (chat.maxtext, 32 KiB by default) and in one frame.
const MaxTextSize = 8192

// LoginPassword is the password of the login scenario's accounts. They are
// load-test accounts on a domain that receives no mail (UserEmail).
const LoginPassword = "imsrv-bench-password"

func (c Config) withDefaults() (Config, error) {
	switch c.Scenario {
	case ScenarioConnect, ScenarioChat, ScenarioLogin:
	default:
		return c, fmt.Errorf("bench: unknown scenario %q (want connect, chat or login)", c.Scenario)
	}
	if c.Prefix == "" {
		c.Prefix = "bench-" + c.Scenario + "-"
	}
	isLogin := c.Scenario == ScenarioLogin
	if c.Users <= 0 {
		c.Users = pick(isLogin, 10, 100)
	}
	if c.Pairs <= 0 {
		c.Pairs = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = pick(isLogin, 4, 64)
	}
	if c.Window <= 0 {
		c.Window = 1
	}
	if c.TextSize <= 0 {
		c.TextSize = 32
	}
	if c.TextSize > MaxTextSize {
		return c, fmt.Errorf("bench: text size %d: at most %d bytes", c.TextSize, MaxTextSize)
	}
	if c.Duration <= 0 {
		c.Duration = pick(c.Scenario == ScenarioConnect, 30*time.Second, 10*time.Second)
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 10 * time.Second
	}
	if c.First < 0 || c.Rate < 0 || c.Count < 0 {
		return c, errors.New("bench: first, rate and count must not be negative")
	}
	if isLogin && c.Users < c.Concurrency {
		return c, fmt.Errorf("bench: login needs at least as many users (%d) as concurrent logins (%d): "+
			"a second login of a user kicks the first", c.Users, c.Concurrency)
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: max(c.Concurrency, adminParallel),
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// Run runs the configured scenario and returns its report. Cancelling ctx
// ends the run early; the report then covers what was done. Errors are for
// runs that could not be carried out (bad configuration, provisioning
// refused); problems measured during a run are in the report
// (Report.Problems).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	gate, err := NewGateClient(cfg.Gate, cfg.AdminToken, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	metricsURLs := cfg.MetricsURLs
	switch {
	case len(metricsURLs) == 0:
		metricsURLs = []string{gate.URL() + "/metrics"}
	case len(metricsURLs) == 1 && metricsURLs[0] == "-":
		metricsURLs = nil
	}
	r := &runner{
		cfg:    cfg,
		gate:   gate,
		probe:  ServerProbe{MetricsURLs: metricsURLs, PIDs: cfg.PIDs, HTTP: cfg.HTTPClient},
		dialer: &dialer{sources: cfg.Sources},
		log:    cfg.Logger,
		report: newReport(cfg),
	}
	r.phase.Store("set-up")
	r.checkFileLimit()

	var s scenario
	switch cfg.Scenario {
	case ScenarioConnect:
		s = &connectRun{r: r}
	case ScenarioChat:
		s = &chatRun{r: r}
	case ScenarioLogin:
		s = &loginRun{r: r}
	}
	stopProgress := r.startProgress(s.progress)
	err = s.run(ctx)
	stopProgress()
	r.report.Elapsed = Seconds(time.Since(r.report.Started))
	r.report.Setup.TokenTime = Seconds(r.tokenTime.Load())
	if err != nil {
		return nil, err
	}
	return r.report, nil
}

// scenario is one kind of run.
type scenario interface {
	// run carries the scenario out and fills the runner's report.
	run(ctx context.Context) error
	// progress is the live progress line; called from another goroutine.
	progress() string
}

// runner holds what every scenario uses.
type runner struct {
	cfg    Config
	gate   *GateClient
	probe  ServerProbe
	dialer *dialer
	log    *slog.Logger
	report *Report
	phase  atomic.Value // string: what the run is doing, for the progress line
	// tokenTime is the time spent waiting for /admin/login, in nanoseconds.
	tokenTime atomic.Int64
}

func (r *runner) setPhase(p string) { r.phase.Store(p) }

// warn adds a warning to the report, once.
func (r *runner) warn(msg string, args ...any) {
	w := fmt.Sprintf(msg, args...)
	if !slices.Contains(r.report.Warnings, w) {
		r.report.Warnings = append(r.report.Warnings, w)
	}
}

// checkFileLimit raises the open-file limit and warns when it is too low
// for the connections this run opens.
func (r *runner) checkFileLimit() {
	need := r.cfg.Users
	switch r.cfg.Scenario {
	case ScenarioChat:
		need = 2 * r.cfg.Pairs
	case ScenarioLogin:
		need = r.cfg.Concurrency
	}
	need += 64 // HTTP connections, stdio, the runtime's own descriptors
	fl, err := RaiseFileLimit()
	r.report.FileLimit = fl
	if err != nil {
		r.warn("%v", err)
		r.log.Warn("bench: cannot raise the open-file limit", "err", err)
	}
	if fl.Soft > 0 && fl.Soft < uint64(need) {
		r.warn("open-file limit %d (hard %d) is below the ~%d this run needs: connections beyond it fail with EMFILE; "+
			"split the run over several processes (--shard i/n) or raise the hard limit (ulimit -Hn, systemd LimitNOFILE)",
			fl.Soft, fl.Hard, need)
		r.log.Warn("bench: open-file limit too low", "limit", fl.Soft, "hard", fl.Hard, "need", need)
	}
}

// provision creates (or reuses) the users with indexes first..first+n-1
// and returns them in order. With a password they can log in through
// /user_login (each new one costs the server a password hash).
func (r *runner) provision(ctx context.Context, first, n int, passwd string) ([]ProvisionedUser, error) {
	r.setPhase("provisioning")
	users := make([]NewUser, n)
	for i := range users {
		name := UserName(r.cfg.Prefix, first+i)
		users[i] = NewUser{User: name, Email: UserEmail(name), Passwd: passwd}
	}
	start := time.Now()
	out, err := r.gate.CreateUsers(ctx, users, adminBatch, adminParallel)
	if err != nil {
		return nil, err
	}
	s := &r.report.Setup
	s.Users += n
	for _, u := range out {
		if u.Created {
			s.Created++
		}
	}
	s.ProvisionTime += Seconds(time.Since(start))
	return out, nil
}

// feedBatch is how many chat logins the login feed asks for at once.
const feedBatch = 32

// feedItem is the chat login of users[i].
type feedItem struct {
	i     int
	login Login
}

// loginFeed issues the users' chat logins (POST /admin/login) in small
// batches, in order, at most ahead of them before they are taken: just in
// time, as real clients connect right after they log in. Issued all at
// once, they would all go to whichever chat node was least loaded at that
// moment, since a node's load counts only the connections made. The
// channel closes after the last login or on the first error, which err then
// returns (once the channel is closed).
func (r *runner) loginFeed(ctx context.Context, users []ProvisionedUser, ahead int) (feed <-chan feedItem, err func() error) {
	ch := make(chan feedItem, max(ahead, 1))
	var feedErr error
	go func() {
		defer close(ch)
		for lo := 0; lo < len(users); lo += feedBatch {
			hi := min(lo+feedBatch, len(users))
			uids := make([]int32, 0, hi-lo)
			for _, u := range users[lo:hi] {
				uids = append(uids, u.UID)
			}
			start := time.Now()
			logins, err := r.gate.AdminLogins(ctx, uids, feedBatch, 1)
			r.tokenTime.Add(int64(time.Since(start)))
			if err != nil {
				if ctx.Err() == nil {
					feedErr = err
				}
				return
			}
			for k, l := range logins {
				select {
				case ch <- feedItem{i: lo + k, login: l}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, func() error { return feedErr }
}

// sampleServer reads the server's memory, or returns ok false (with a
// warning in the report) when it cannot be read.
func (r *runner) sampleServer(ctx context.Context, when string) (ServerSample, bool) {
	if len(r.probe.MetricsURLs) == 0 && len(r.probe.PIDs) == 0 {
		return ServerSample{}, false
	}
	s, err := r.probe.Sample(ctx)
	if err != nil {
		r.warn("server memory %s not measured: %v", when, err)
		return s, false
	}
	return s, true
}

// cpuMark is the CPU time used by the server (with PIDs) and by this
// process at one instant.
type cpuMark struct {
	at                  time.Time
	server, bench       time.Duration
	hasServer, hasBench bool
}

func (r *runner) markCPU() cpuMark {
	m := cpuMark{at: time.Now()}
	m.bench, m.hasBench = selfCPU()
	m.server, m.hasServer = r.probe.serverCPU()
	return m
}

// reportCPU records the CPU used since m by a phase of the run that did
// units of work (see CPU).
func (r *runner) reportCPU(phase string, m cpuMark, units int, unit string) {
	now := r.markCPU()
	c := CPU{Phase: phase, Wall: Seconds(now.at.Sub(m.at)), Units: units, Unit: unit, SharedServer: r.cfg.Shard.Count > 1}
	if m.hasBench && now.hasBench {
		c.Bench = Seconds(now.bench - m.bench)
	}
	if m.hasServer && now.hasServer {
		s := Seconds(now.server - m.server)
		c.Server = &s
	}
	r.report.CPU = append(r.report.CPU, c)
}

// startProgress prints line() every second to the progress writer until the
// returned stop is called.
func (r *runner) startProgress(line func() string) (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprintf(w, "\r\033[K%s", line())
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// pacer spaces events i = 0, 1, 2, ... at a fixed rate from start.
type pacer struct {
	start    time.Time
	interval time.Duration // 0 = no pacing
}

func newPacer(rate float64) pacer { return newPacerPhase(rate, 0) }

// newPacerPhase returns a pacer whose events are shifted by phase (0 <= phase
// < 1) of an interval, so that many pacers of the same rate started together
// spread their events instead of firing in bursts.
func newPacerPhase(rate, phase float64) pacer {
	p := pacer{start: time.Now()}
	if rate > 0 {
		p.interval = time.Duration(float64(time.Second) / rate)
		p.start = p.start.Add(time.Duration(phase * float64(p.interval)))
	}
	return p
}

// wait waits until event i is due, or ctx ends.
func (p pacer) wait(ctx context.Context, i int) error {
	if p.interval > 0 {
		if d := time.Until(p.start.Add(time.Duration(i) * p.interval)); d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
	return ctx.Err()
}

// rate is n per second over d.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
