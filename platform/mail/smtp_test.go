package mail_test

import (
	"context"
	"errors"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/platform/mail"
	"github.com/imsrv/imsrv/platform/mail/mailtest"
)

const waitTimeout = 5 * time.Second

// sinkConfig returns a config that reaches sink with the given TLS mode.
func sinkConfig(sink *mailtest.Sink, tlsMode string) mail.SMTPConfig {
	return mail.SMTPConfig{
		Host:               sink.Host(),
		Port:               sink.Port(),
		From:               "IMsrv <no-reply@imsrv.test>",
		TLS:                tlsMode,
		Timeout:            waitTimeout,
		InsecureSkipVerify: true,
	}
}

func newSender(t *testing.T, cfg mail.SMTPConfig) *mail.SMTPSender {
	t.Helper()
	s, err := mail.NewSMTPSender(cfg)
	if err != nil {
		t.Fatalf("NewSMTPSender: %v", err)
	}
	return s
}

func TestSMTPSenderDelivers(t *testing.T) {
	t.Parallel()
	modes := []struct {
		tls  string
		opts []mailtest.Option
	}{
		{mail.TLSNone, nil},
		{mail.TLSStartTLS, []mailtest.Option{mailtest.WithStartTLS()}},
		{mail.TLSImplicit, []mailtest.Option{mailtest.WithImplicitTLS()}},
	}
	for _, mode := range modes {
		for _, auth := range []bool{false, true} {
			name := mode.tls
			if auth {
				name += "/auth"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				opts := mode.opts
				if auth {
					opts = append(opts[:len(opts):len(opts)], mailtest.WithAuth("mailer", "s3cret"))
				}
				sink := mailtest.NewSink(t, opts...)
				cfg := sinkConfig(sink, mode.tls)
				if auth {
					cfg.User, cfg.Password = "mailer", "s3cret"
				}

				msg := mail.Message{To: "alice@example.com", Subject: "Your code", Body: "Your code is 123456."}
				if err := newSender(t, cfg).Send(t.Context(), msg); err != nil {
					t.Fatalf("Send: %v", err)
				}

				got := sink.WaitFor(t, "alice@example.com", waitTimeout)
				if got.From != "no-reply@imsrv.test" {
					t.Errorf("envelope from = %q, want no-reply@imsrv.test", got.From)
				}
				if len(got.To) != 1 || got.To[0] != "alice@example.com" {
					t.Errorf("envelope to = %q, want [alice@example.com]", got.To)
				}
				if got.Subject != msg.Subject {
					t.Errorf("subject = %q, want %q", got.Subject, msg.Subject)
				}
				if got.Body != msg.Body {
					t.Errorf("body = %q, want %q", got.Body, msg.Body)
				}
				if want := mode.tls != mail.TLSNone; got.TLS != want {
					t.Errorf("delivered over TLS = %v, want %v", got.TLS, want)
				}
			})
		}
	}
}

func TestSMTPSenderMessageFormat(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	msg := mail.Message{
		To:      "张伟 <zhang.wei@example.com>",
		Subject: "您的验证码：这是一个很长的主题，用来检查编码后的头部会被正确地折叠成多行而不丢失任何内容",
		Body: "您好，\n\n您的验证码是 654321，十分钟内有效。\n" +
			".\n" + // a lone dot must survive SMTP dot-stuffing
			".leading dot\n" +
			"trailing spaces   \n" +
			strings.Repeat("很长的一行", 40) + "\r\n" +
			"最后一行",
	}
	if err := newSender(t, sinkConfig(sink, mail.TLSNone)).Send(t.Context(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := sink.WaitFor(t, "zhang.wei@example.com", waitTimeout)

	if got.Subject != msg.Subject {
		t.Errorf("subject = %q, want %q", got.Subject, msg.Subject)
	}
	if want := strings.ReplaceAll(msg.Body, "\r\n", "\n"); got.Body != want {
		t.Errorf("body = %q, want %q", got.Body, want)
	}

	raw := string(got.Raw)
	if !strings.HasSuffix(raw, "\r\n") {
		t.Error("message does not end with CRLF")
	}
	inBody := false
	for i, line := range strings.Split(strings.TrimSuffix(raw, "\r\n"), "\r\n") {
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("line %d contains a bare CR or LF: %q", i+1, line)
		}
		// RFC 2045 limits quoted-printable lines to 76 octets; header lines
		// with encoded-words stay well under RFC 5322's 998.
		limit := 100
		if inBody {
			limit = 76
		}
		inBody = inBody || line == ""
		if len(line) > limit {
			t.Errorf("line %d is %d octets long, want at most %d: %q", i+1, len(line), limit, line)
		}
		for _, b := range []byte(line) {
			if b >= 0x80 {
				t.Errorf("line %d has a non-ASCII octet: %q", i+1, line)
				break
			}
		}
	}

	parsed, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	h := parsed.Header
	wantHeaders := map[string]string{
		"MIME-Version":              "1.0",
		"Content-Type":              "text/plain; charset=UTF-8",
		"Content-Transfer-Encoding": "quoted-printable",
	}
	for name, want := range wantHeaders {
		if got := h.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Name != "IMsrv" || from[0].Address != "no-reply@imsrv.test" {
		t.Errorf("From = %q (%v), want IMsrv <no-reply@imsrv.test>", h.Get("From"), err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Name != "张伟" || to[0].Address != "zhang.wei@example.com" {
		t.Errorf("To = %q (%v), want 张伟 <zhang.wei@example.com>", h.Get("To"), err)
	}
	if date, err := h.Date(); err != nil || time.Since(date).Abs() > time.Hour {
		t.Errorf("Date = %q (%v), want about now", h.Get("Date"), err)
	}
	if id := h.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@imsrv.test>") {
		t.Errorf("Message-ID = %q, want <...@imsrv.test>", id)
	}
}

func TestSMTPSenderRejectsHeaderInjection(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	sender := newSender(t, sinkConfig(sink, mail.TLSNone))
	tests := map[string]mail.Message{
		"CRLF in To":       {To: "alice@example.com\r\nBcc: mallory@example.com", Subject: "hi", Body: "x"},
		"LF in To":         {To: "alice@example.com\nBcc: mallory@example.com", Subject: "hi", Body: "x"},
		"CRLF in Subject":  {To: "alice@example.com", Subject: "hi\r\nBcc: mallory@example.com", Body: "x"},
		"CR in Subject":    {To: "alice@example.com", Subject: "hi\rBcc: mallory@example.com", Body: "x"},
		"invalid address":  {To: "not an address", Subject: "hi", Body: "x"},
		"empty recipient":  {To: "", Subject: "hi", Body: "x"},
		"two recipients":   {To: "alice@example.com, mallory@example.com", Subject: "hi", Body: "x"},
		"LF in quoted To":  {To: "\"Alice\nBcc: m@example.com\" <alice@example.com>", Subject: "hi", Body: "x"},
		"LF in To display": {To: "Alice\n <alice@example.com>", Subject: "hi", Body: "x"},
	}
	for name, msg := range tests {
		t.Run(name, func(t *testing.T) {
			if err := sender.Send(t.Context(), msg); err == nil {
				t.Errorf("Send(%q, %q) succeeded, want error", msg.To, msg.Subject)
			}
		})
	}
	if n := sink.Count(); n != 0 {
		t.Errorf("sink received %d messages, want 0", n)
	}
}

func TestSMTPSenderWrongPassword(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t, mailtest.WithStartTLS(), mailtest.WithAuth("mailer", "s3cret"))
	cfg := sinkConfig(sink, mail.TLSStartTLS)
	cfg.User, cfg.Password = "mailer", "wrong"

	err := newSender(t, cfg).Send(t.Context(), mail.Message{To: "alice@example.com", Subject: "hi", Body: "x"})
	var protoErr *textproto.Error
	if !errors.As(err, &protoErr) || protoErr.Code != 535 {
		t.Fatalf("Send error = %v, want SMTP 535", err)
	}
	if !strings.Contains(err.Error(), "AUTH") {
		t.Errorf("error %q does not mention AUTH", err)
	}
	if n := sink.Count(); n != 0 {
		t.Errorf("sink received %d messages, want 0", n)
	}
}

func TestSMTPSenderAuthNotOffered(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t) // no AUTH
	cfg := sinkConfig(sink, mail.TLSNone)
	cfg.User, cfg.Password = "mailer", "s3cret"

	err := newSender(t, cfg).Send(t.Context(), mail.Message{To: "alice@example.com", Subject: "hi", Body: "x"})
	if err == nil || !strings.Contains(err.Error(), "AUTH PLAIN") {
		t.Fatalf("Send error = %v, want one about AUTH PLAIN not offered", err)
	}
}

func TestSMTPSenderStartTLSNotOffered(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t) // plain text only
	err := newSender(t, sinkConfig(sink, mail.TLSStartTLS)).Send(t.Context(), mail.Message{To: "alice@example.com", Subject: "hi", Body: "x"})
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send error = %v, want one about STARTTLS not offered", err)
	}
	if n := sink.Count(); n != 0 {
		t.Errorf("sink received %d messages, want 0", n)
	}
}

func TestSMTPSenderVerifiesCertificate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		tls  string
		opts []mailtest.Option
	}{
		{mail.TLSStartTLS, []mailtest.Option{mailtest.WithStartTLS()}},
		{mail.TLSImplicit, []mailtest.Option{mailtest.WithImplicitTLS()}},
	} {
		t.Run(tc.tls, func(t *testing.T) {
			t.Parallel()
			sink := mailtest.NewSink(t, tc.opts...)
			cfg := sinkConfig(sink, tc.tls)
			cfg.InsecureSkipVerify = false // the sink's certificate is self-signed

			err := newSender(t, cfg).Send(t.Context(), mail.Message{To: "alice@example.com", Subject: "hi", Body: "x"})
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("Send error = %v, want a certificate verification error", err)
			}
			if n := sink.Count(); n != 0 {
				t.Errorf("sink received %d messages, want 0", n)
			}
		})
	}
}

// silentServer accepts TCP connections and never says anything.
func silentServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr)
}

func TestSMTPSenderSilentServer(t *testing.T) {
	t.Parallel()
	msg := mail.Message{To: "alice@example.com", Subject: "hi", Body: "x"}
	silentConfig := func(t *testing.T, tlsMode string) mail.SMTPConfig {
		addr := silentServer(t)
		return mail.SMTPConfig{Host: addr.IP.String(), Port: addr.Port, From: "no-reply@imsrv.test", TLS: tlsMode}
	}

	for _, tlsMode := range []string{mail.TLSNone, mail.TLSImplicit} {
		t.Run("timeout/"+tlsMode, func(t *testing.T) {
			t.Parallel()
			cfg := silentConfig(t, tlsMode)
			cfg.Timeout = 300 * time.Millisecond
			err := newSender(t, cfg).Send(t.Context(), msg)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send error = %v, want one wrapping context.DeadlineExceeded", err)
			}
		})
	}

	t.Run("context deadline", func(t *testing.T) {
		t.Parallel()
		cfg := silentConfig(t, mail.TLSNone)
		cfg.Timeout = time.Hour
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		err := newSender(t, cfg).Send(ctx, msg)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Send error = %v, want one wrapping context.DeadlineExceeded", err)
		}
	})

	t.Run("context canceled", func(t *testing.T) {
		t.Parallel()
		cfg := silentConfig(t, mail.TLSNone)
		cfg.Timeout = time.Hour
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(300*time.Millisecond, cancel)
		err := newSender(t, cfg).Send(ctx, msg)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Send error = %v, want one wrapping context.Canceled", err)
		}
	})
}

func TestSMTPSenderDialError(t *testing.T) {
	t.Parallel()
	addr := silentServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens on port any more

	cfg := mail.SMTPConfig{Host: addr.IP.String(), Port: port, From: "no-reply@imsrv.test", TLS: mail.TLSNone}
	err = newSender(t, cfg).Send(t.Context(), mail.Message{To: "alice@example.com", Subject: "hi", Body: "x"})
	if err == nil || !strings.HasPrefix(err.Error(), "smtp: dial ") {
		t.Fatalf("Send error = %v, want a dial error", err)
	}
}

func TestSMTPConfigValidate(t *testing.T) {
	t.Parallel()
	valid := mail.SMTPConfig{
		Host: "smtp.example.com", Port: 587, User: "mailer", Password: "s3cret",
		From: "IMsrv <no-reply@example.com>", TLS: mail.TLSStartTLS, Timeout: 5 * time.Second,
	}
	if err := valid.Validate(); err != nil {
		t.Fatalf("Validate(valid) = %v", err)
	}
	localPlain := mail.SMTPConfig{Host: "localhost", Port: 25, User: "u", Password: "p", From: "a@localhost", TLS: mail.TLSNone}
	if err := localPlain.Validate(); err != nil {
		t.Errorf("Validate(auth over plain text to localhost) = %v, want nil", err)
	}

	tests := []struct {
		name   string
		modify func(*mail.SMTPConfig)
		want   string
	}{
		{"no host", func(c *mail.SMTPConfig) { c.Host = "" }, "smtp.host"},
		{"host with port", func(c *mail.SMTPConfig) { c.Host = "smtp.example.com:587" }, "smtp.host"},
		{"host with space", func(c *mail.SMTPConfig) { c.Host = "smtp example.com" }, "smtp.host"},
		{"port zero", func(c *mail.SMTPConfig) { c.Port = 0 }, "smtp.port"},
		{"port too large", func(c *mail.SMTPConfig) { c.Port = 65536 }, "smtp.port"},
		{"no from", func(c *mail.SMTPConfig) { c.From = "" }, "smtp.from"},
		{"bad from", func(c *mail.SMTPConfig) { c.From = "no-reply" }, "smtp.from"},
		{"from with line break", func(c *mail.SMTPConfig) { c.From = "a@example.com\r\nBcc: b@example.com" }, "smtp.from"},
		{"no tls", func(c *mail.SMTPConfig) { c.TLS = "" }, "smtp.tls"},
		{"unknown tls", func(c *mail.SMTPConfig) { c.TLS = "ssl" }, "smtp.tls"},
		{"password without user", func(c *mail.SMTPConfig) { c.User = "" }, "smtp.password"},
		{"credentials in clear text", func(c *mail.SMTPConfig) { c.TLS = mail.TLSNone }, "smtp.tls"},
		{"negative timeout", func(c *mail.SMTPConfig) { c.Timeout = -time.Second }, "smtp.timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.modify(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want+":") {
				t.Fatalf("Validate() = %v, want an error about %s", err, tc.want)
			}
			if _, err := mail.NewSMTPSender(cfg); err == nil {
				t.Error("NewSMTPSender accepted an invalid config")
			}
		})
	}

	t.Run("reports every problem", func(t *testing.T) {
		err := mail.SMTPConfig{}.Validate()
		for _, field := range []string{"smtp.host", "smtp.port", "smtp.from", "smtp.tls"} {
			if err == nil || !strings.Contains(err.Error(), field+":") {
				t.Errorf("Validate(zero) = %v, want it to mention %s", err, field)
			}
		}
	})
}
