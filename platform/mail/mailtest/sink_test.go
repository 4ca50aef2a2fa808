package mailtest_test

import (
	"crypto/tls"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/imsrv/imsrv/platform/mail/mailtest"
)

// send delivers a raw message (LF line endings are turned into CRLF).
func send(t *testing.T, sink *mailtest.Sink, to []string, raw string) {
	t.Helper()
	if err := trySend(sink, to, raw); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
}

func trySend(sink *mailtest.Sink, to []string, raw string) error {
	c, err := smtp.Dial(sink.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	raw = strings.ReplaceAll(raw, "\n", "\r\n")
	if err := c.SendMail("sender@example.com", to, strings.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

func TestSinkDecodesBodies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, subject, body string
	}{
		{
			name:    "7bit",
			raw:     "Subject: plain\n\nline one\nline two\n",
			subject: "plain",
			body:    "line one\nline two",
		},
		{
			name: "quoted-printable",
			raw: "Subject: =?UTF-8?q?=E4=BD=A0=E5=A5=BD?=\nContent-Type: text/plain; charset=UTF-8\n" +
				"Content-Transfer-Encoding: quoted-printable\n\n=E9=AA=8C=E8=AF=81=E7=A0=81 12=\n3456\n",
			subject: "你好",
			body:    "验证码 123456",
		},
		{
			name:    "base64",
			raw:     "Subject: b64\nContent-Transfer-Encoding: base64\n\n6aqM6K+B56CBIDEy\nMzQ1Ng==\n",
			subject: "b64",
			body:    "验证码 123456",
		},
		{
			name: "multipart",
			raw: "Subject: alt\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=XX\n\n" +
				"--XX\nContent-Type: text/html\n\n<p>html</p>\n" +
				"--XX\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: quoted-printable\n\ncode =3D 42\n" +
				"--XX--\n",
			subject: "alt",
			body:    "code = 42",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := mailtest.NewSink(t)
			send(t, sink, []string{"alice@example.com"}, tc.raw)
			got := sink.WaitFor(t, "alice@example.com", 5*time.Second)
			if got.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", got.Subject, tc.subject)
			}
			if got.Body != tc.body {
				t.Errorf("Body = %q, want %q", got.Body, tc.body)
			}
			if got.From != "sender@example.com" || len(got.To) != 1 || got.To[0] != "alice@example.com" {
				t.Errorf("envelope = %q -> %q, want sender@example.com -> [alice@example.com]", got.From, got.To)
			}
			if want := strings.ReplaceAll(tc.raw, "\n", "\r\n"); string(got.Raw) != want {
				t.Errorf("Raw = %q, want %q", got.Raw, want)
			}
		})
	}
}

func TestSinkWaitForReturnsSuccessiveMessages(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	send(t, sink, []string{"alice@example.com"}, "Subject: first\n\n1\n")
	send(t, sink, []string{"bob@example.com", "Alice@Example.com"}, "Subject: second\n\n2\n")

	if got := sink.WaitFor(t, "ALICE@example.com", time.Second); got.Subject != "first" {
		t.Errorf("first WaitFor(alice) = %q, want first", got.Subject)
	}
	if got := sink.WaitFor(t, "alice@example.com", time.Second); got.Subject != "second" {
		t.Errorf("second WaitFor(alice) = %q, want second", got.Subject)
	}
	if got := sink.WaitFor(t, "bob@example.com", time.Second); got.Subject != "second" {
		t.Errorf("WaitFor(bob) = %q, want second", got.Subject)
	}

	// A message that arrives while WaitFor is waiting is returned.
	sent := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		sent <- trySend(sink, []string{"alice@example.com"}, "Subject: third\n\n3\n")
	}()
	if got := sink.WaitFor(t, "alice@example.com", 5*time.Second); got.Subject != "third" {
		t.Errorf("third WaitFor(alice) = %q, want third", got.Subject)
	}
	if err := <-sent; err != nil {
		t.Fatalf("SendMail: %v", err)
	}

	if n := sink.Count(); n != 3 {
		t.Errorf("Count() = %d, want 3", n)
	}
	msgs := sink.Messages()
	if len(msgs) != 3 || msgs[0].Subject != "first" || msgs[2].Subject != "third" {
		t.Errorf("Messages() = %+v, want first, second, third", msgs)
	}
}

// fatalRecorder records a Fatalf call and stops the calling goroutine, as
// testing.T does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = format
	runtime.Goexit()
}

func TestSinkWaitForTimesOut(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t)
	send(t, sink, []string{"bob@example.com"}, "Subject: not for alice\n\nx\n")

	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sink.WaitFor(rec, "alice@example.com", 50*time.Millisecond)
	}()
	<-done
	if rec.msg == "" {
		t.Error("WaitFor returned without failing the test")
	}
}

func TestSinkRequiresAuth(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t, mailtest.WithAuth("mailer", "s3cret"))

	c := dial(t, sink.Addr())
	if err := c.Mail("sender@example.com", nil); err == nil {
		t.Error("MAIL FROM without AUTH succeeded")
	}
	if err := c.Auth(sasl.NewPlainClient("", "mailer", "wrong")); !isSMTPCode(err, 535) {
		t.Errorf("AUTH with a wrong password = %v, want 535", err)
	}

	c = dial(t, sink.Addr())
	if err := c.Auth(sasl.NewPlainClient("", "mailer", "s3cret")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("sender@example.com", nil); err != nil {
		t.Errorf("MAIL FROM after AUTH: %v", err)
	}
}

func TestSinkStartTLS(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t, mailtest.WithStartTLS())

	c := dial(t, sink.Addr())
	if err := c.Mail("sender@example.com", nil); !isSMTPCode(err, 530) {
		t.Errorf("MAIL FROM before STARTTLS = %v, want 530", err)
	}

	c, err := smtp.DialStartTLS(sink.Addr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("DialStartTLS: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	msg := "Subject: secure\r\n\r\nhello\r\n"
	if err := c.SendMail("sender@example.com", []string{"alice@example.com"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("SendMail over STARTTLS: %v", err)
	}
	if got := sink.WaitFor(t, "alice@example.com", 5*time.Second); !got.TLS || got.Body != "hello" {
		t.Errorf("received TLS=%v body=%q, want TLS=true body=hello", got.TLS, got.Body)
	}
}

func TestSinkImplicitTLS(t *testing.T) {
	t.Parallel()
	sink := mailtest.NewSink(t, mailtest.WithImplicitTLS())
	c, err := smtp.DialTLS(sink.Addr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	msg := "Subject: secure\r\n\r\nhello\r\n"
	if err := c.SendMail("sender@example.com", []string{"alice@example.com"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("SendMail over TLS: %v", err)
	}
	if got := sink.WaitFor(t, "alice@example.com", 5*time.Second); !got.TLS {
		t.Error("message not marked as received over TLS")
	}
	if sink.Host() != "127.0.0.1" || sink.Port() == 0 || !strings.HasSuffix(sink.Addr(), ":"+strconv.Itoa(sink.Port())) {
		t.Errorf("Host, Port, Addr = %q, %d, %q are inconsistent", sink.Host(), sink.Port(), sink.Addr())
	}
}

func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("localhost"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

func isSMTPCode(err error, code int) bool {
	var smtpErr *smtp.SMTPError
	return errors.As(err, &smtpErr) && smtpErr.Code == code
}
