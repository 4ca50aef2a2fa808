// Package verifytest is the contract test suite for verify.Service. Run
// builds the real verify module on a given KV store, mailing through a real
// SMTP sender to an in-process sink, and checks it through a wrap: Local
// tests the module in process, OverGRPC and OverTCP through a verifyrpc
// client and server. Passing the same suite both ways is what lets callers
// ignore whether the module is local or remote.
package verifytest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/modules/verify/verifyrpc"
	"github.com/imsrv/imsrv/platform/grpcx/grpcxtest"
	"github.com/imsrv/imsrv/platform/kv"
	"github.com/imsrv/imsrv/platform/mail"
	"github.com/imsrv/imsrv/platform/mail/mailtest"
)

// Wrap puts the module under test behind the transport under test and
// returns what the suite should call. It may register cleanups with t.
type Wrap func(t *testing.T, svc verify.Service) verify.Service

// Local tests the module in process: it returns svc itself.
func Local(_ *testing.T, svc verify.Service) verify.Service { return svc }

// OverGRPC serves svc with verifyrpc on an in-memory connection and returns a
// verifyrpc.Client for it.
func OverGRPC(t *testing.T, svc verify.Service) verify.Service {
	cc, _ := grpcxtest.Pipe(t, func(s grpc.ServiceRegistrar) { verifyrpc.Register(s, svc) })
	return verifyrpc.NewClient(cc)
}

// OverTCP is OverGRPC over a loopback TCP connection made by grpcx.Dial.
func OverTCP(t *testing.T, svc verify.Service) verify.Service {
	cc, _, _ := grpcxtest.Loopback(t, func(s grpc.ServiceRegistrar) { verifyrpc.Register(s, svc) })
	return verifyrpc.NewClient(cc)
}

// Run runs the suite. newStore returns a fresh, empty store for one subtest
// and registers its Close with t.Cleanup; subtests run in parallel, so it must
// be safe for concurrent use. wrap is applied to every module the suite
// builds.
func Run(t *testing.T, newStore func(t *testing.T) kv.Store, wrap Wrap) {
	t.Helper()
	s := suite{newStore: newStore, wrap: wrap}
	tests := []struct {
		name string
		fn   func(t *testing.T, s suite)
	}{
		{"SendCodeMailsACode", testSendCodeMailsACode},
		{"ResendKeepsTheLiveCode", testResendKeepsTheLiveCode},
		{"InvalidEmail", testInvalidEmail},
		{"PerEmailCap", testPerEmailCap},
		{"PerAddrCap", testPerAddrCap},
		{"CapWindowExpires", testCapWindowExpires},
		{"CheckCode", testCheckCode},
		{"WrongCodeShapes", testWrongCodeShapes},
		{"AttemptsInvalidateTheCode", testAttemptsInvalidateTheCode},
		{"ConsumeCodeOnce", testConsumeCodeOnce},
		{"CodeExpiry", testCodeExpiry},
		{"EmailCaseInsensitive", testEmailCaseInsensitive},
		{"DeliveryRefused", testDeliveryRefused},
		{"DeliveryRelaySilent", testDeliveryRelaySilent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, s)
		})
	}
}

type suite struct {
	newStore func(t *testing.T) kv.Store
	wrap     Wrap
}

// service returns the module with cfg on a fresh store, mailing with sender,
// as wrapped.
func (s suite) service(t *testing.T, cfg verify.Config, sender mail.Sender) verify.Service {
	t.Helper()
	m := verify.New(cfg, s.newStore(t), sender, slog.New(slog.DiscardHandler))
	return s.wrap(t, m)
}

// env is one test's service with the sink its mail goes to.
type env struct {
	svc  verify.Service
	sink *mailtest.Sink
}

// env returns the module with cfg, mailing through a real SMTP sender (no
// TLS) to an in-process sink.
func (s suite) env(t *testing.T, cfg verify.Config) *env {
	t.Helper()
	sink := mailtest.NewSink(t)
	return &env{svc: s.service(t, cfg, smtpSender(t, sink.Host(), sink.Port())), sink: sink}
}

func smtpSender(t *testing.T, host string, port int) mail.Sender {
	t.Helper()
	sender, err := mail.NewSMTPSender(mail.SMTPConfig{
		Host: host, Port: port, From: "imsrv <noreply@imsrv.test>", TLS: mail.TLSNone,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sender
}

var codeRE = regexp.MustCompile(`code is (\d{4})\.`)

func (e *env) send(t *testing.T, email, addr string) error {
	t.Helper()
	return e.svc.SendCode(t.Context(), verify.SendRequest{Email: email, ClientAddr: addr})
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

func testSendCodeMailsACode(t *testing.T, s suite) {
	e := s.env(t, verify.Config{})
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
	if err := e.svc.CheckCode(t.Context(), email, m[1]); err != nil {
		t.Fatalf("CheckCode(mailed code) = %v", err)
	}
}

func testResendKeepsTheLiveCode(t *testing.T, s suite) {
	e := s.env(t, verify.Config{})
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
}

func testInvalidEmail(t *testing.T, s suite) {
	e := s.env(t, verify.Config{})
	for _, bad := range []string{
		"", "   ", "not-an-email", "@example.com", "a@", "a b@example.com",
		"Name <a@example.com>", "<a@example.com>", "a@example.com, b@example.com",
		"a@example.com\r\nBcc: victim@example.com", "a@exa\x00mple.com",
		strings.Repeat("a", 250) + "@example.com",
	} {
		if err := e.send(t, bad, "192.0.2.1"); !errors.Is(err, verify.ErrInvalidEmail) {
			t.Errorf("SendCode(%q) = %v, want ErrInvalidEmail", bad, err)
		}
		if err := e.svc.CheckCode(t.Context(), bad, "1234"); !errors.Is(err, verify.ErrNoCode) {
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
}

func testPerEmailCap(t *testing.T, s suite) {
	e := s.env(t, verify.Config{PerEmail: 2, PerAddr: 100})
	e.sendCode(t, "dan@example.com")
	e.sendCode(t, "dan@example.com")
	for _, addr := range []string{"192.0.2.1", "198.51.100.7", ""} {
		// Another case of the same address, from anywhere, is the same e-mail.
		err := e.send(t, "DAN@example.com", addr)
		if !errors.Is(err, verify.ErrRateLimited) {
			t.Fatalf("third send from %q = %v, want ErrRateLimited", addr, err)
		}
		// The error says which cap was hit, wherever the module runs.
		if !strings.Contains(err.Error(), "for one e-mail") {
			t.Fatalf("third send from %q = %q, want the cap in the message", addr, err)
		}
	}
	if n := e.sink.Count(); n != 2 {
		t.Fatalf("%d mails, want 2: a capped request sent mail", n)
	}
	// Other addresses are unaffected.
	e.sendCode(t, "erin@example.com")
}

func testPerAddrCap(t *testing.T, s suite) {
	e := s.env(t, verify.Config{PerEmail: 100, PerAddr: 3})
	for i := range 3 {
		if err := e.send(t, fmt.Sprintf("u%d@example.com", i), "203.0.113.9"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.send(t, "u3@example.com", "203.0.113.9"); !errors.Is(err, verify.ErrRateLimited) ||
		!strings.Contains(err.Error(), "from one address") {
		t.Fatalf("fourth send from one address = %v, want ErrRateLimited for the address", err)
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
}

func testCapWindowExpires(t *testing.T, s suite) {
	e := s.env(t, verify.Config{PerEmail: 1, Window: time.Second})
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
}

func testCheckCode(t *testing.T, s suite) {
	e := s.env(t, verify.Config{})
	ctx := t.Context()
	email := "fay@example.com"
	if err := e.svc.CheckCode(ctx, email, "1234"); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("CheckCode before any request = %v, want ErrNoCode", err)
	}
	c := e.sendCode(t, email)
	if err := e.svc.CheckCode(ctx, email, wrong(c)); !errors.Is(err, verify.ErrWrongCode) {
		t.Fatalf("CheckCode(wrong) = %v, want ErrWrongCode", err)
	}
	for range 3 {
		if err := e.svc.CheckCode(ctx, email, c); err != nil {
			t.Fatalf("CheckCode(right) = %v: checking must not use the code up", err)
		}
	}
	if err := e.svc.ConsumeCode(ctx, email, c); err != nil {
		t.Fatalf("ConsumeCode(right) = %v", err)
	}
	if err := e.svc.CheckCode(ctx, email, c); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("CheckCode after consume = %v, want ErrNoCode", err)
	}
	if err := e.svc.ConsumeCode(ctx, email, c); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("second ConsumeCode = %v, want ErrNoCode", err)
	}
}

func testWrongCodeShapes(t *testing.T, s suite) {
	e := s.env(t, verify.Config{MaxAttempts: 100})
	email := "gil@example.com"
	c := e.sendCode(t, email)
	for _, bad := range []string{wrong(c), "", c + "0", c[:3], " " + c, "abcd", "１２３４"} {
		if err := e.svc.CheckCode(t.Context(), email, bad); !errors.Is(err, verify.ErrWrongCode) {
			t.Errorf("CheckCode(%q) = %v, want ErrWrongCode", bad, err)
		}
		if err := e.svc.ConsumeCode(t.Context(), email, bad); !errors.Is(err, verify.ErrWrongCode) {
			t.Errorf("ConsumeCode(%q) = %v, want ErrWrongCode", bad, err)
		}
	}
	if err := e.svc.ConsumeCode(t.Context(), email, c); err != nil {
		t.Fatalf("the right code after wrong ones: %v", err)
	}
}

func testAttemptsInvalidateTheCode(t *testing.T, s suite) {
	e := s.env(t, verify.Config{})
	ctx := t.Context()
	// Four wrong attempts (checks and consumes both count): still valid.
	a := "hal@example.com"
	c := e.sendCode(t, a)
	for i := range 4 {
		check := e.svc.CheckCode
		if i%2 == 1 {
			check = e.svc.ConsumeCode
		}
		if err := check(ctx, a, wrong(c)); !errors.Is(err, verify.ErrWrongCode) {
			t.Fatalf("wrong attempt %d = %v, want ErrWrongCode", i+1, err)
		}
	}
	if err := e.svc.CheckCode(ctx, a, c); err != nil {
		t.Fatalf("right code after 4 wrong attempts = %v", err)
	}

	// The fifth wrong attempt invalidates it.
	b := "ivy@example.com"
	c = e.sendCode(t, b)
	for i := range 5 {
		if err := e.svc.ConsumeCode(ctx, b, wrong(c)); !errors.Is(err, verify.ErrWrongCode) {
			t.Fatalf("wrong attempt %d = %v, want ErrWrongCode", i+1, err)
		}
	}
	if err := e.svc.CheckCode(ctx, b, c); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("right code after 5 wrong attempts = %v, want ErrNoCode", err)
	}
	if err := e.svc.ConsumeCode(ctx, b, c); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("ConsumeCode after 5 wrong attempts = %v, want ErrNoCode", err)
	}
	// A new request issues a fresh code with a fresh attempt count.
	c2 := e.sendCode(t, b)
	for range 4 {
		if err := e.svc.CheckCode(ctx, b, wrong(c2)); !errors.Is(err, verify.ErrWrongCode) {
			t.Fatal(err)
		}
	}
	if err := e.svc.ConsumeCode(ctx, b, c2); err != nil {
		t.Fatalf("fresh code after 4 wrong attempts = %v", err)
	}
}

func testConsumeCodeOnce(t *testing.T, s suite) {
	e := s.env(t, verify.Config{})
	email := "jay@example.com"
	c := e.sendCode(t, email)
	const n = 20
	results := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = e.svc.ConsumeCode(context.Background(), email, c)
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
}

func testCodeExpiry(t *testing.T, s suite) {
	e := s.env(t, verify.Config{TTL: 300 * time.Millisecond})
	email := "kim@example.com"
	c := e.sendCode(t, email)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := e.svc.CheckCode(t.Context(), email, c)
		if errors.Is(err, verify.ErrNoCode) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("CheckCode while waiting for expiry = %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.svc.ConsumeCode(t.Context(), email, c); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("ConsumeCode(expired) = %v, want ErrNoCode", err)
	}
	// After expiry a request mails a new live code.
	c2 := e.sendCode(t, email)
	if err := e.svc.ConsumeCode(t.Context(), email, c2); err != nil {
		t.Fatalf("ConsumeCode(new) = %v", err)
	}
}

// testEmailCaseInsensitive: a code requested for one spelling of an address
// checks and consumes under any other case.
func testEmailCaseInsensitive(t *testing.T, s suite) {
	e := s.env(t, verify.Config{})
	c := e.sendCode(t, "A@X.com")
	if err := e.svc.CheckCode(t.Context(), "a@x.com", c); err != nil {
		t.Fatalf("CheckCode(a@x.com) = %v", err)
	}
	if err := e.svc.CheckCode(t.Context(), " A@X.COM ", c); err != nil {
		t.Fatalf("CheckCode(' A@X.COM ') = %v", err)
	}
	if err := e.svc.ConsumeCode(t.Context(), "a@X.Com", c); err != nil {
		t.Fatalf("ConsumeCode(a@X.Com) = %v", err)
	}
	if err := e.svc.CheckCode(t.Context(), "A@X.com", c); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("CheckCode after consume = %v, want ErrNoCode", err)
	}
	// Codes are per address.
	c2 := e.sendCode(t, "b@x.com")
	if err := e.svc.CheckCode(t.Context(), "c@x.com", c2); !errors.Is(err, verify.ErrNoCode) {
		t.Fatalf("another address's code = %v, want ErrNoCode", err)
	}
}

func testDeliveryRefused(t *testing.T, s suite) {
	svc := s.service(t, verify.Config{}, smtpSender(t, "127.0.0.1", closedPort(t)))
	err := svc.SendCode(t.Context(), verify.SendRequest{Email: "lee@example.com", ClientAddr: "192.0.2.1"})
	if !errors.Is(err, verify.ErrDelivery) {
		t.Fatalf("SendCode = %v, want ErrDelivery", err)
	}
}

func testDeliveryRelaySilent(t *testing.T, s suite) {
	// The relay accepts connections but never greets: SendTimeout bounds the wait.
	svc := s.service(t, verify.Config{SendTimeout: 300 * time.Millisecond}, smtpSender(t, "127.0.0.1", SilentRelay(t)))
	start := time.Now()
	err := svc.SendCode(t.Context(), verify.SendRequest{Email: "lee@example.com"})
	if !errors.Is(err, verify.ErrDelivery) {
		t.Fatalf("SendCode = %v, want ErrDelivery", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("SendCode took %s despite a 300ms send timeout", d)
	}
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

// SilentRelay listens on a loopback port, accepts connections and never says
// a word, like a mail relay that hangs. It returns the port; the listener and
// its connections are closed when the test ends.
func SilentRelay(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				c.Close()
			} else {
				conns = append(conns, c)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}
