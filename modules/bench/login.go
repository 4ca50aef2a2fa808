package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
)

// loginRun logs Users accounts in round-robin the way a client does: the
// password login (POST /user_login), then the chat login with the token it
// returns, then hangs up. Concurrency loops run, paced at Rate in total,
// for Duration or Count logins.
type loginRun struct {
	r *runner

	attempts, ok, failed atomic.Int64
	errs                 Errors
	gateLat, chatLat     Samples
	total                Samples
	start                atomic.Int64 // unix nanoseconds; 0 before the logins
}

func (l *loginRun) run(ctx context.Context) error {
	r, cfg := l.r, l.r.cfg
	// Accounts with a password: each new one costs the server a hash, once.
	users, err := r.provision(ctx, cfg.First, cfg.Users, LoginPassword)
	if err != nil {
		return err
	}
	r.setPhase("logging in")
	cpu := r.markCPU()
	start := time.Now()
	l.start.Store(start.UnixNano())
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	pace := newPacer(cfg.Rate)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if (cfg.Count > 0 && i >= cfg.Count) || pace.wait(runCtx, i) != nil {
					return
				}
				l.once(runCtx, users[i%len(users)])
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r.reportCPU("login", cpu, int(l.ok.Load()), "login")
	r.report.Login = &LoginResult{
		Attempts:    int(l.attempts.Load()),
		OK:          int(l.ok.Load()),
		Failed:      int(l.failed.Load()),
		Errors:      l.errs.Counts(),
		Elapsed:     Seconds(elapsed),
		Rate:        rate(int(l.ok.Load()), elapsed),
		GateLatency: l.gateLat.Summary(),
		ChatLatency: l.chatLat.Summary(),
		Latency:     l.total.Summary(),
	}
	return nil
}

// once logs u in through the gate and its chat node, then hangs up. A login
// cut short by the end of the run is not counted.
func (l *loginRun) once(ctx context.Context, u ProvisionedUser) {
	fail := func(what string) {
		if ctx.Err() != nil {
			return // the run ended mid-login
		}
		l.attempts.Add(1)
		l.failed.Add(1)
		l.errs.Add(what)
	}
	start := time.Now()
	login, err := l.r.gate.UserLogin(ctx, u.Email, LoginPassword)
	if err != nil {
		fail(classify("/user_login", err))
		return
	}
	gateDone := time.Now()
	cl, err := l.r.connect(ctx, login, chatclient.WithPushBuffer(8))
	if err != nil {
		fail(err.Error())
		return
	}
	cl.client.Close()
	l.attempts.Add(1)
	l.ok.Add(1)
	l.gateLat.Add(gateDone.Sub(start))
	l.chatLat.Add(cl.took)
	l.total.Add(time.Since(start))
}

func (l *loginRun) progress() string {
	phase := l.r.phase.Load().(string)
	s := l.start.Load()
	if s == 0 {
		return fmt.Sprintf("login  %s  (%d users)", phase, l.r.cfg.Users)
	}
	elapsed := time.Since(time.Unix(0, s))
	return fmt.Sprintf("login  %-10s %5.1fs  ok %s  failed %s  %.1f/s", phase, elapsed.Seconds(),
		num(int(l.ok.Load())), num(int(l.failed.Load())), rate(int(l.ok.Load()), elapsed))
}
