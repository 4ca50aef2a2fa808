package verify_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/platform/kv"
	"github.com/imsrv/imsrv/platform/mail"
	"github.com/imsrv/imsrv/platform/mail/mailtest"
)

// The suite runs on every kv.Store implementation.
var kvBackends = []struct {
	name string
	open func(t *testing.T) kv.Store
}{
	{"memory", func(t *testing.T) kv.Store {
		s := kv.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s
	}},
	{"redis", openRedis},
}

// openRedis returns a Redis store under a fresh random key prefix whose keys
// are deleted when the test ends. It skips without IMSRV_TEST_REDIS_URL.
func openRedis(t *testing.T) kv.Store {
	t.Helper()
	url := os.Getenv("IMSRV_TEST_REDIS_URL")
	if url == "" {
		t.Skip("IMSRV_TEST_REDIS_URL not set; skipping Redis test")
	}
	s, err := kv.NewRedis(url)
	if err != nil {
		t.Fatalf("redis: %v", err)
	}
	prefix := "test-verify-" + rand.Text() + ":"
	t.Cleanup(func() {
		_ = s.Close()
		dropRedisPrefix(t, url, prefix)
	})
	return kv.WithPrefix(s, prefix)
}

// dropRedisPrefix deletes every key under prefix.
func dropRedisPrefix(t *testing.T, url, prefix string) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Errorf("redis cleanup: %v", err)
		return
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Errorf("redis cleanup: %v", err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Errorf("redis cleanup: scan: %v", err)
			return
		}
		if len(e.Elements) > 0 {
			if err := c.Do(ctx, c.B().Del().Key(e.Elements...).Build()).Error(); err != nil {
				t.Errorf("redis cleanup: del: %v", err)
				return
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

// env is one test's verify module with its mail sink and KV store.
type env struct {
	m     *verify.Module
	sink  *mailtest.Sink
	store kv.Store
}

// eachKV runs f as a parallel subtest per KV backend, with a module mailing
// through a real SMTP sender (no TLS) to an in-process sink.
func eachKV(t *testing.T, cfg verify.Config, f func(t *testing.T, e *env)) {
	t.Helper()
	for _, b := range kvBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			store := b.open(t)
			sink := mailtest.NewSink(t)
			sender, err := mail.NewSMTPSender(mail.SMTPConfig{
				Host: sink.Host(), Port: sink.Port(), From: "imsrv <noreply@imsrv.test>", TLS: mail.TLSNone,
			})
			if err != nil {
				t.Fatal(err)
			}
			f(t, &env{m: verify.New(cfg, store, sender, slog.New(slog.DiscardHandler)), sink: sink, store: store})
		})
	}
}

var codeRE = regexp.MustCompile(`code is (\d{4})\.`)

func (e *env) send(t *testing.T, email, addr string) error {
	t.Helper()
	return e.m.SendCode(t.Context(), verify.SendRequest{Email: email, ClientAddr: addr})
}

// sendCode requests a code and returns it as read from the delivered mail.
func (e *env) sendCode(t *testing.T, email string) string {
	t.Helper()
	if err := e.send(t, email, "192.0.2.1"); err != nil {
		t.Fatalf("SendCode(%s): %v", email, err)
	}
	// SendCode returns after the relay accepted the mail, so it is there.
	msg := e.sink.WaitFor(t, email, 5*time.Second)
	m := codeRE.FindStringSubmatch(msg.Body)
	if m == nil {
		t.Fatalf("mail to %s has no 4-digit code: %q", email, msg.Body)
	}
	return m[1]
}

// wrong returns a 4-digit code different from c.
func wrong(c string) string {
	var n int
	fmt.Sscanf(c, "%d", &n)
	return fmt.Sprintf("%04d", (n+1)%10000)
}

func TestSendCodeMailsACode(t *testing.T) {
	eachKV(t, verify.Config{}, func(t *testing.T, e *env) {
		email := "Alice.Smith+im@Example.com"
		if err := e.send(t, email, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		msgs := e.sink.Messages()
		if len(msgs) != 1 {
			t.Fatalf("%d mails, want 1", len(msgs))
		}
		msg := msgs[0]
		if len(msg.To) != 1 || msg.To[0] != email {
			t.Fatalf("mail to %v, want exactly %s as given", msg.To, email)
		}
		if msg.From != "noreply@imsrv.test" || msg.Subject == "" {
			t.Fatalf("mail from %q subject %q", msg.From, msg.Subject)
		}
		m := codeRE.FindStringSubmatch(msg.Body)
		if m == nil || len(m[1]) != 4 {
			t.Fatalf("no 4-digit code in %q", msg.Body)
		}
		if !strings.Contains(msg.Body, "验证码") {
			t.Errorf("the body lost its Chinese text: %q", msg.Body)
		}
		if err := e.m.CheckCode(t.Context(), email, m[1]); err != nil {
			t.Fatalf("CheckCode(mailed code) = %v", err)
		}
	})
}

func TestResendKeepsTheLiveCode(t *testing.T) {
	eachKV(t, verify.Config{}, func(t *testing.T, e *env) {
		email := "bob@example.com"
		c1 := e.sendCode(t, email)
		c2 := e.sendCode(t, email)
		c3 := e.sendCode(t, "BOB@example.com") // the same address in another case
		if c1 != c2 || c1 != c3 {
			t.Fatalf("resend changed the code: %s, %s, %s", c1, c2, c3)
		}
		if n := e.sink.Count(); n != 3 {
			t.Fatalf("%d mails, want 3 (each request re-sends)", n)
		}
	})
}

func TestInvalidEmail(t *testing.T) {
	eachKV(t, verify.Config{}, func(t *testing.T, e *env) {
		for _, bad := range []string{
			"", "   ", "not-an-email", "@example.com", "a@", "a b@example.com",
			"Name <a@example.com>", "<a@example.com>", "a@example.com, b@example.com",
			"a@example.com\r\nBcc: victim@example.com", "a@exa\x00mple.com",
			strings.Repeat("a", 250) + "@example.com",
		} {
			if err := e.send(t, bad, "192.0.2.1"); !errors.Is(err, verify.ErrInvalidEmail) {
				t.Errorf("SendCode(%q) = %v, want ErrInvalidEmail", bad, err)
			}
			if err := e.m.CheckCode(t.Context(), bad, "1234"); !errors.Is(err, verify.ErrNoCode) {
				t.Errorf("CheckCode(%q) = %v, want ErrNoCode", bad, err)
			}
		}
		if n := e.sink.Count(); n != 0 {
			t.Fatalf("%d mails sent for invalid addresses", n)
		}
		// Surrounding spaces are trimmed, not refused.
		if err := e.send(t, "  carol@example.com ", "192.0.2.1"); err != nil {
			t.Fatalf("SendCode with spaces around the address: %v", err)
		}
		if msg := e.sink.WaitFor(t, "carol@example.com", 5*time.Second); msg.To[0] != "carol@example.com" {
			t.Fatalf("mail to %v", msg.To)
		}
	})
}

func TestNormalizeEmail(t *testing.T) {
	for in, want := range map[string]string{
		"a@b.c":             "a@b.c",
		" A@B.C ":           "a@b.c",
		"Alice@Example.COM": "alice@example.com",
	} {
		if got, err := verify.NormalizeEmail(in); err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestPerEmailCap(t *testing.T) {
	eachKV(t, verify.Config{PerEmail: 2, PerAddr: 100}, func(t *testing.T, e *env) {
		e.sendCode(t, "dan@example.com")
		e.sendCode(t, "dan@example.com")
		for _, addr := range []string{"192.0.2.1", "198.51.100.7", ""} {
			// Another case of the same address, from anywhere, is the same e-mail.
			if err := e.send(t, "DAN@example.com", addr); !errors.Is(err, verify.ErrRateLimited) {
				t.Fatalf("third send from %q = %v, want ErrRateLimited", addr, err)
			}
		}
		if n := e.sink.Count(); n != 2 {
			t.Fatalf("%d mails, want 2: a capped request sent mail", n)
		}
		// Other addresses are unaffected.
		e.sendCode(t, "erin@example.com")
	})
}

func TestPerAddrCap(t *testing.T) {
	eachKV(t, verify.Config{PerEmail: 100, PerAddr: 3}, func(t *testing.T, e *env) {
		for i := range 3 {
			if err := e.send(t, fmt.Sprintf("u%d@example.com", i), "203.0.113.9"); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.send(t, "u3@example.com", "203.0.113.9"); !errors.Is(err, verify.ErrRateLimited) {
			t.Fatalf("fourth send from one address = %v, want ErrRateLimited", err)
		}
		if n := e.sink.Count(); n != 3 {
			t.Fatalf("%d mails, want 3: a capped request sent mail", n)
		}
		// Another client address, and requests without one, are not capped.
		if err := e.send(t, "u3@example.com", "203.0.113.10"); err != nil {
			t.Fatalf("send from another address: %v", err)
		}
		if err := e.send(t, "u4@example.com", ""); err != nil {
			t.Fatalf("send without a client address: %v", err)
		}
		if n := e.sink.Count(); n != 5 {
			t.Fatalf("%d mails, want 5", n)
		}
	})
}

func TestCapWindowExpires(t *testing.T) {
	eachKV(t, verify.Config{PerEmail: 1, Window: time.Second}, func(t *testing.T, e *env) {
		e.sendCode(t, "win@example.com")
		if err := e.send(t, "win@example.com", "192.0.2.1"); !errors.Is(err, verify.ErrRateLimited) {
			t.Fatalf("second send = %v, want ErrRateLimited", err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := e.send(t, "win@example.com", "192.0.2.1")
			if err == nil {
				break
			}
			if !errors.Is(err, verify.ErrRateLimited) || time.Now().After(deadline) {
				t.Fatalf("send after the window = %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestCheckCode(t *testing.T) {
	eachKV(t, verify.Config{}, func(t *testing.T, e *env) {
		ctx := t.Context()
		email := "fay@example.com"
		if err := e.m.CheckCode(ctx, email, "1234"); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("CheckCode before any request = %v, want ErrNoCode", err)
		}
		c := e.sendCode(t, email)
		if err := e.m.CheckCode(ctx, email, wrong(c)); !errors.Is(err, verify.ErrWrongCode) {
			t.Fatalf("CheckCode(wrong) = %v, want ErrWrongCode", err)
		}
		for range 3 {
			if err := e.m.CheckCode(ctx, email, c); err != nil {
				t.Fatalf("CheckCode(right) = %v: checking must not use the code up", err)
			}
		}
		if err := e.m.ConsumeCode(ctx, email, c); err != nil {
			t.Fatalf("ConsumeCode(right) = %v", err)
		}
		if err := e.m.CheckCode(ctx, email, c); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("CheckCode after consume = %v, want ErrNoCode", err)
		}
		if err := e.m.ConsumeCode(ctx, email, c); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("second ConsumeCode = %v, want ErrNoCode", err)
		}
	})
}

func TestWrongCodeShapes(t *testing.T) {
	eachKV(t, verify.Config{MaxAttempts: 100}, func(t *testing.T, e *env) {
		email := "gil@example.com"
		c := e.sendCode(t, email)
		for _, bad := range []string{wrong(c), "", c + "0", c[:3], " " + c, "abcd", "１２３４"} {
			if err := e.m.CheckCode(t.Context(), email, bad); !errors.Is(err, verify.ErrWrongCode) {
				t.Errorf("CheckCode(%q) = %v, want ErrWrongCode", bad, err)
			}
			if err := e.m.ConsumeCode(t.Context(), email, bad); !errors.Is(err, verify.ErrWrongCode) {
				t.Errorf("ConsumeCode(%q) = %v, want ErrWrongCode", bad, err)
			}
		}
		if err := e.m.ConsumeCode(t.Context(), email, c); err != nil {
			t.Fatalf("the right code after wrong ones: %v", err)
		}
	})
}

func TestAttemptsInvalidateTheCode(t *testing.T) {
	eachKV(t, verify.Config{}, func(t *testing.T, e *env) {
		ctx := t.Context()
		// Four wrong attempts (checks and consumes both count): still valid.
		a := "hal@example.com"
		c := e.sendCode(t, a)
		for i := range 4 {
			check := e.m.CheckCode
			if i%2 == 1 {
				check = e.m.ConsumeCode
			}
			if err := check(ctx, a, wrong(c)); !errors.Is(err, verify.ErrWrongCode) {
				t.Fatalf("wrong attempt %d = %v, want ErrWrongCode", i+1, err)
			}
		}
		if err := e.m.CheckCode(ctx, a, c); err != nil {
			t.Fatalf("right code after 4 wrong attempts = %v", err)
		}

		// The fifth wrong attempt invalidates it.
		b := "ivy@example.com"
		c = e.sendCode(t, b)
		for i := range 5 {
			if err := e.m.ConsumeCode(ctx, b, wrong(c)); !errors.Is(err, verify.ErrWrongCode) {
				t.Fatalf("wrong attempt %d = %v, want ErrWrongCode", i+1, err)
			}
		}
		if err := e.m.CheckCode(ctx, b, c); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("right code after 5 wrong attempts = %v, want ErrNoCode", err)
		}
		if err := e.m.ConsumeCode(ctx, b, c); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("ConsumeCode after 5 wrong attempts = %v, want ErrNoCode", err)
		}
		// A new request issues a fresh code with a fresh attempt count.
		c2 := e.sendCode(t, b)
		for range 4 {
			if err := e.m.CheckCode(ctx, b, wrong(c2)); !errors.Is(err, verify.ErrWrongCode) {
				t.Fatal(err)
			}
		}
		if err := e.m.ConsumeCode(ctx, b, c2); err != nil {
			t.Fatalf("fresh code after 4 wrong attempts = %v", err)
		}
	})
}

func TestConsumeCodeOnce(t *testing.T) {
	eachKV(t, verify.Config{}, func(t *testing.T, e *env) {
		email := "jay@example.com"
		c := e.sendCode(t, email)
		const n = 20
		results := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				results[i] = e.m.ConsumeCode(context.Background(), email, c)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range results {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, verify.ErrNoCode):
			default:
				t.Errorf("ConsumeCode = %v, want nil or ErrNoCode", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d of %d concurrent consumers succeeded, want exactly 1", ok, n)
		}
	})
}

func TestCodeExpiry(t *testing.T) {
	eachKV(t, verify.Config{TTL: 300 * time.Millisecond}, func(t *testing.T, e *env) {
		email := "kim@example.com"
		c := e.sendCode(t, email)
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := e.m.CheckCode(t.Context(), email, c)
			if errors.Is(err, verify.ErrNoCode) {
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("CheckCode while waiting for expiry = %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := e.m.ConsumeCode(t.Context(), email, c); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("ConsumeCode(expired) = %v, want ErrNoCode", err)
		}
		// After expiry a request mails a new live code.
		c2 := e.sendCode(t, email)
		if err := e.m.ConsumeCode(t.Context(), email, c2); err != nil {
			t.Fatalf("ConsumeCode(new) = %v", err)
		}
	})
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestDeliveryFailure(t *testing.T) {
	for _, b := range kvBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			store := b.open(t)

			t.Run("connection refused", func(t *testing.T) {
				sender, err := mail.NewSMTPSender(mail.SMTPConfig{Host: "127.0.0.1", Port: closedPort(t), From: "noreply@imsrv.test", TLS: mail.TLSNone})
				if err != nil {
					t.Fatal(err)
				}
				m := verify.New(verify.Config{}, kv.WithPrefix(store, "refused:"), sender, slog.New(slog.DiscardHandler))
				if err := m.SendCode(t.Context(), verify.SendRequest{Email: "lee@example.com", ClientAddr: "192.0.2.1"}); !errors.Is(err, verify.ErrDelivery) {
					t.Fatalf("SendCode = %v, want ErrDelivery", err)
				}
			})

			t.Run("relay that never answers", func(t *testing.T) {
				// Accepts connections but never greets: SendTimeout bounds the wait.
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				var mu sync.Mutex
				var conns []net.Conn
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						mu.Lock()
						conns = append(conns, c)
						mu.Unlock()
					}
				}()
				t.Cleanup(func() {
					ln.Close()
					mu.Lock()
					defer mu.Unlock()
					for _, c := range conns {
						c.Close()
					}
				})
				sender, err := mail.NewSMTPSender(mail.SMTPConfig{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "noreply@imsrv.test", TLS: mail.TLSNone})
				if err != nil {
					t.Fatal(err)
				}
				m := verify.New(verify.Config{SendTimeout: 300 * time.Millisecond}, kv.WithPrefix(store, "silent:"), sender, slog.New(slog.DiscardHandler))
				start := time.Now()
				err = m.SendCode(t.Context(), verify.SendRequest{Email: "lee@example.com"})
				if !errors.Is(err, verify.ErrDelivery) {
					t.Fatalf("SendCode = %v, want ErrDelivery", err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Fatalf("SendCode took %s despite a 300ms send timeout", d)
				}
			})
		})
	}
}

// TestEmailCaseInsensitive: a code requested for one spelling of an address
// checks and consumes under any other case.
func TestEmailCaseInsensitive(t *testing.T) {
	eachKV(t, verify.Config{}, func(t *testing.T, e *env) {
		c := e.sendCode(t, "A@X.com")
		if err := e.m.CheckCode(t.Context(), "a@x.com", c); err != nil {
			t.Fatalf("CheckCode(a@x.com) = %v", err)
		}
		if err := e.m.CheckCode(t.Context(), " A@X.COM ", c); err != nil {
			t.Fatalf("CheckCode(' A@X.COM ') = %v", err)
		}
		if err := e.m.ConsumeCode(t.Context(), "a@X.Com", c); err != nil {
			t.Fatalf("ConsumeCode(a@X.Com) = %v", err)
		}
		if err := e.m.CheckCode(t.Context(), "A@X.com", c); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("CheckCode after consume = %v, want ErrNoCode", err)
		}
		// Codes are per address.
		c2 := e.sendCode(t, "b@x.com")
		if err := e.m.CheckCode(t.Context(), "c@x.com", c2); !errors.Is(err, verify.ErrNoCode) {
			t.Fatalf("another address's code = %v, want ErrNoCode", err)
		}
	})
}
