// Package mailtest provides an in-process SMTP server that records the
// messages it receives, so tests can read what a mail.Sender delivered (for
// example a verification code) without a real mail server.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message accepted by a Sink.
type Received struct {
	// From is the envelope sender (MAIL FROM).
	From string
	// To holds the envelope recipients (RCPT TO).
	To []string
	// Subject is the Subject header with RFC 2047 encoded-words decoded.
	Subject string
	// Body is the text body: transfer encoding (quoted-printable, base64)
	// removed, line endings turned into "\n", and the line break ending the
	// last line dropped. For a multipart message it is the first text/plain
	// part. The charset is assumed to be UTF-8.
	Body string
	// Raw is the message exactly as received, CRLF line endings included.
	Raw []byte
	// TLS reports whether the session that delivered the message was
	// encrypted.
	TLS bool
}

// Option configures a Sink.
type Option func(*config)

type tlsMode int

const (
	tlsNone tlsMode = iota
	tlsStartTLS
	tlsImplicit
)

type config struct {
	user, password string
	tls            tlsMode
}

// WithAuth makes the sink offer AUTH PLAIN and refuse MAIL FROM until the
// client has authenticated as user with password.
func WithAuth(user, password string) Option {
	return func(c *config) { c.user, c.password = user, password }
}

// WithStartTLS makes the sink offer STARTTLS and refuse MAIL FROM (and AUTH)
// until the client has used it. The certificate is self-signed, so clients
// must skip verification.
func WithStartTLS() Option {
	return func(c *config) { c.tls = tlsStartTLS }
}

// WithImplicitTLS makes the sink expect a TLS handshake as soon as a client
// connects ("SMTPS"). The certificate is self-signed, so clients must skip
// verification.
func WithImplicitTLS() Option {
	return func(c *config) { c.tls = tlsImplicit }
}

// Sink is an SMTP server on 127.0.0.1 that accepts mail for any recipient
// and keeps it in memory. It is safe for concurrent use.
type Sink struct {
	cfg  config
	addr *net.TCPAddr

	mu       sync.Mutex
	msgs     []Received
	consumed map[string]int // lower-cased recipient -> messages returned by WaitFor
	arrived  chan struct{}  // closed, then replaced, whenever a message is stored
}

// NewSink starts a sink on an ephemeral port of 127.0.0.1 and stops it when
// the test ends.
func NewSink(t testing.TB, opts ...Option) *Sink {
	t.Helper()
	s := &Sink{
		consumed: make(map[string]int),
		arrived:  make(chan struct{}),
	}
	for _, opt := range opts {
		opt(&s.cfg)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s.addr = ln.Addr().(*net.TCPAddr)

	logger := &testLogger{t: t}
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = logger
	switch s.cfg.tls {
	case tlsNone:
		srv.AllowInsecureAuth = true
	case tlsStartTLS:
		srv.TLSConfig = selfSignedTLSConfig(t)
	case tlsImplicit:
		ln = tls.NewListener(ln, selfSignedTLSConfig(t))
	}

	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil {
			logger.Printf("mailtest: serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		// Close the listener too: srv.Close before Serve has registered it
		// would otherwise leave Serve blocked in Accept.
		_ = srv.Close()
		_ = ln.Close()
		<-served
		logger.stop()
	})
	return s
}

// Addr returns the sink's address as "127.0.0.1:port".
func (s *Sink) Addr() string { return s.addr.String() }

// Host returns the sink's IP address, "127.0.0.1".
func (s *Sink) Host() string { return s.addr.IP.String() }

// Port returns the sink's TCP port.
func (s *Sink) Port() int { return s.addr.Port }

// Messages returns the messages received so far, oldest first. The caller
// must not modify the slices inside them.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Count returns how many messages have been received.
func (s *Sink) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// WaitFor returns the oldest message addressed to the recipient to (compared
// case-insensitively) that no earlier WaitFor call has returned, waiting up
// to timeout for it to arrive; it fails the test if none does. Successive
// calls therefore return successive messages, e.g. a first and a resent
// verification code. Like t.Fatal, it must be called from the test's
// goroutine.
func (s *Sink) WaitFor(t testing.TB, to string, timeout time.Duration) Received {
	t.Helper()
	key := strings.ToLower(to)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		seen := 0
		for _, m := range s.msgs {
			if !slices.ContainsFunc(m.To, func(rcpt string) bool { return strings.EqualFold(rcpt, to) }) {
				continue
			}
			if seen == s.consumed[key] {
				s.consumed[key]++
				s.mu.Unlock()
				return m
			}
			seen++
		}
		arrived := s.arrived
		s.mu.Unlock()

		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("mailtest: no new message to %q within %s (%d received in all)", to, timeout, s.Count())
			return Received{}
		}
	}
}

func (s *Sink) store(m Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *Sink) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{sink: s, conn: c}, nil
}

// session is one SMTP connection's state. go-smtp calls its methods from the
// connection's goroutine only.
type session struct {
	sink   *Sink
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) isTLS() bool {
	_, ok := s.conn.TLSConnectionState()
	return ok
}

// AuthMechanisms implements smtp.AuthSession.
func (s *session) AuthMechanisms() []string {
	if s.sink.cfg.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth implements smtp.AuthSession.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if s.sink.cfg.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if (identity != "" && identity != user) || user != s.sink.cfg.user || password != s.sink.cfg.password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

// Mail implements smtp.Session.
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.sink.cfg.tls == tlsStartTLS && !s.isTLS() {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}
	}
	if s.sink.cfg.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

// Rcpt implements smtp.Session.
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

// Data implements smtp.Session.
func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("mailtest: read message: %w", err)
	}
	subject, body, err := parseMessage(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: " + err.Error()}
	}
	s.sink.store(Received{
		From:    s.from,
		To:      slices.Clone(s.to),
		Subject: subject,
		Body:    body,
		Raw:     raw,
		TLS:     s.isTLS(),
	})
	return nil
}

// Reset implements smtp.Session.
func (s *session) Reset() {
	s.from, s.to = "", nil
}

// Logout implements smtp.Session.
func (s *session) Logout() error { return nil }

// parseMessage returns the decoded subject and text body of raw.
func parseMessage(raw []byte) (subject, body string, err error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return "", "", fmt.Errorf("parse message: %w", err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return "", "", fmt.Errorf("decode subject: %w", err)
	}
	text, err := textBody(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return "", "", err
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	return subject, strings.TrimSuffix(text, "\n"), nil
}

// textBody decodes the text/plain content of an entity with the given
// Content-Type and Content-Transfer-Encoding, descending into multipart
// entities.
func textBody(contentType, encoding string, r io.Reader) (string, error) {
	mediaType, params, err := parseMediaType(contentType)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(r, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return "", errors.New("multipart message without a text/plain part")
			}
			if err != nil {
				return "", fmt.Errorf("read multipart: %w", err)
			}
			ct := part.Header.Get("Content-Type")
			if mt, _, err := parseMediaType(ct); err == nil && (mt == "text/plain" || strings.HasPrefix(mt, "multipart/")) {
				return textBody(ct, part.Header.Get("Content-Transfer-Encoding"), part)
			}
		}
	}
	if mediaType != "text/plain" {
		return "", fmt.Errorf("unsupported Content-Type %q", mediaType)
	}

	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "", "7bit", "8bit", "binary":
	default:
		return "", fmt.Errorf("unsupported Content-Transfer-Encoding %q", encoding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("decode %s body: %w", encoding, err)
	}
	return string(b), nil
}

// parseMediaType parses a Content-Type header value; an empty one means
// text/plain (RFC 2045).
func parseMediaType(contentType string) (string, map[string]string, error) {
	if contentType == "" {
		return "text/plain", nil, nil
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", nil, fmt.Errorf("parse Content-Type %q: %w", contentType, err)
	}
	return mediaType, params, nil
}

// selfSignedTLSConfig returns a server configuration with a fresh certificate
// for localhost, 127.0.0.1 and ::1.
func selfSignedTLSConfig(t testing.TB) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mailtest: generate key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("mailtest: generate serial number: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("mailtest: create certificate: %v", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
}

// testLogger routes the server's error log to t.Logf until the sink stops;
// later lines are dropped, since logging after a test ends panics.
type testLogger struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf(format, v...)
	}
}

func (l *testLogger) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Log(v...)
	}
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
