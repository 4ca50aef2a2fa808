package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/smtp"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Transport security modes for SMTPConfig.TLS.
const (
	// TLSNone speaks plain SMTP. Credentials are only sent to localhost.
	TLSNone = "none"
	// TLSStartTLS connects in plain text and upgrades with STARTTLS; sending
	// fails if the server does not offer it (typically port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit negotiates TLS as soon as the connection is open
	// ("SMTPS", typically port 465).
	TLSImplicit = "tls"
)

// defaultSMTPTimeout bounds one Send when SMTPConfig.Timeout is zero.
const defaultSMTPTimeout = 10 * time.Second

// SMTPConfig configures an SMTPSender. Validate reports problems using the
// configuration key names ("smtp.host", "smtp.tls", ...).
type SMTPConfig struct {
	// Host is the server's host name or IP address, without a port.
	Host string
	// Port is the server's TCP port (1-65535).
	Port int
	// User enables AUTH PLAIN when non-empty.
	User string
	// Password is User's password.
	Password string
	// From is the sender address, optionally with a display name
	// ("IMsrv <no-reply@example.com>"). Its bare address is also the
	// envelope sender (MAIL FROM).
	From string
	// TLS is the transport security: TLSNone, TLSStartTLS or TLSImplicit.
	TLS string
	// Timeout bounds a whole Send (dial, TLS handshake and SMTP dialogue);
	// zero means 10s. A shorter deadline on Send's context wins.
	Timeout time.Duration
	// InsecureSkipVerify disables verification of the server's certificate.
	// It exists for tests against self-signed servers; never set it in
	// production.
	InsecureSkipVerify bool
}

// Validate checks c and returns every problem found, joined, or nil.
func (c SMTPConfig) Validate() error {
	var errs []error
	switch {
	case c.Host == "":
		errs = append(errs, errors.New("smtp.host: required"))
	case strings.ContainsFunc(c.Host, isSpaceOrControl):
		errs = append(errs, fmt.Errorf("smtp.host: %q contains spaces or control characters", c.Host))
	case strings.Contains(c.Host, ":") && net.ParseIP(c.Host) == nil:
		errs = append(errs, fmt.Errorf("smtp.host: %q must not include a port (use smtp.port)", c.Host))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("smtp.port: %d is out of range 1-65535", c.Port))
	}
	if c.From == "" {
		errs = append(errs, errors.New("smtp.from: required"))
	} else if _, err := parseAddress(c.From); err != nil {
		errs = append(errs, fmt.Errorf("smtp.from: %w", err))
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		errs = append(errs, fmt.Errorf("smtp.tls: %q is not one of %q, %q, %q", c.TLS, TLSNone, TLSStartTLS, TLSImplicit))
	}
	if c.User == "" && c.Password != "" {
		errs = append(errs, errors.New("smtp.password: set but smtp.user is empty"))
	}
	if c.User != "" && c.TLS == TLSNone && !isLocalhost(c.Host) {
		errs = append(errs, fmt.Errorf("smtp.tls: %q would send smtp.user's password unencrypted to %q; use %q or %q",
			c.TLS, c.Host, TLSStartTLS, TLSImplicit))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("smtp.timeout: %s is negative", c.Timeout))
	}
	return errors.Join(errs...)
}

// SMTPSender delivers each message over a new SMTP connection. It is safe for
// concurrent use.
type SMTPSender struct {
	cfg  SMTPConfig
	from *netmail.Address // cfg.From, parsed
	addr string           // host:port
}

var _ Sender = (*SMTPSender)(nil)

// NewSMTPSender validates cfg and returns a sender. It does no I/O: a wrong
// server or wrong credentials only show up on Send.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mail: invalid smtp config: %w", err)
	}
	from, err := parseAddress(cfg.From)
	if err != nil { // unreachable: Validate parsed it
		return nil, fmt.Errorf("mail: invalid smtp config: smtp.from: %w", err)
	}
	return &SMTPSender{
		cfg:  cfg,
		from: from,
		addr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
	}, nil
}

// Send delivers m. It returns when the server has accepted the message, or
// with an error when composing, dialling or any step of the SMTP dialogue
// fails, when ctx is done, or when the configured timeout elapses, whichever
// comes first. A malformed recipient or a subject containing a line break is
// rejected before any connection is made.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	rcpt, msg, err := s.compose(m, time.Now())
	if err != nil {
		return err
	}

	timeout := s.cfg.Timeout
	if timeout == 0 {
		timeout = defaultSMTPTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	err = s.deliver(ctx, rcpt, msg)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		// Most likely an I/O error provoked by the deadline or the
		// cancellation; let callers see the cause too.
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The connection's deadline is ctx's, which ctx itself may not
		// have noticed yet.
		return fmt.Errorf("%w (%w)", err, context.DeadlineExceeded)
	default:
		return err
	}
}

// deliver runs one SMTP session that sends msg to rcpt. ctx must have a
// deadline: it is applied to the connection so that a server that stops
// answering cannot block the caller past it.
func (s *SMTPSender) deliver(ctx context.Context, rcpt string, msg []byte) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("smtp: dial %s: %w", s.addr, err)
	}
	defer conn.Close()

	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("smtp: set deadline on connection to %s: %w", s.addr, err)
	}
	// Cancellation has no deadline of its own: on it, expire the connection's
	// deadline at once to interrupt any pending read or write.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return fmt.Errorf("smtp: greeting from %s: %w", s.addr, err)
	}
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("smtp: EHLO to %s: %w", s.addr, err)
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp: %s does not offer STARTTLS, which smtp.tls %q requires", s.addr, s.cfg.TLS)
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("smtp: STARTTLS with %s: %w", s.addr, err)
		}
	}
	if s.cfg.User != "" {
		ok, mechs := c.Extension("AUTH")
		if !ok || !slices.Contains(strings.Fields(strings.ToUpper(mechs)), "PLAIN") {
			return fmt.Errorf("smtp: %s does not offer AUTH PLAIN (offers %q)", s.addr, mechs)
		}
		// smtp.PlainAuth itself refuses to send the password over an
		// unencrypted connection to anything but localhost.
		if err := c.Auth(smtp.PlainAuth("", s.cfg.User, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("smtp: AUTH PLAIN as %q at %s: %w", s.cfg.User, s.addr, err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("smtp: MAIL FROM:<%s>: %w", s.from.Address, err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return fmt.Errorf("smtp: RCPT TO:<%s>: %w", rcpt, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: end of DATA: %w", err)
	}
	// The server has taken responsibility for the message; a failed QUIT
	// must not make the caller retry and deliver it twice.
	_ = c.Quit()
	return nil
}

// dial opens the connection, negotiating TLS first in TLSImplicit mode.
func (s *SMTPSender) dial(ctx context.Context) (net.Conn, error) {
	dialer := &net.Dialer{}
	if s.cfg.TLS == TLSImplicit {
		td := &tls.Dialer{NetDialer: dialer, Config: s.tlsConfig()}
		return td.DialContext(ctx, "tcp", s.addr)
	}
	return dialer.DialContext(ctx, "tcp", s.addr)
}

func (s *SMTPSender) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         s.cfg.Host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: s.cfg.InsecureSkipVerify, //nolint:gosec // opt-in, for tests only
	}
}

// compose validates m and renders it as an RFC 5322 message with CRLF line
// endings and a quoted-printable UTF-8 body. It returns the bare recipient
// address for RCPT TO along with the message.
func (s *SMTPSender) compose(m Message, now time.Time) (rcpt string, msg []byte, err error) {
	to, err := parseAddress(m.To)
	if err != nil {
		return "", nil, fmt.Errorf("smtp: recipient: %w", err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return "", nil, fmt.Errorf("smtp: subject %q contains a line break", m.Subject)
	}

	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("From", s.from.String())
	header("To", to.String())
	header("Subject", encodeSubject(m.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+rand.Text()+"@"+domainOf(s.from.Address)+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=UTF-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")

	// The writer turns LF, CRLF and lone CR into CRLF and keeps lines short.
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Body)); err != nil {
		return "", nil, fmt.Errorf("smtp: encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return "", nil, fmt.Errorf("smtp: encode body: %w", err)
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return to.Address, b.Bytes(), nil
}

// encodeSubject RFC 2047-encodes s when it is not plain ASCII, folding
// between encoded-words (at most 75 characters each) so that a long subject
// does not become one very long header line.
func encodeSubject(s string) string {
	enc := mime.QEncoding.Encode("UTF-8", s)
	// Folding (CRLF before whitespace) is undone by readers, and whitespace
	// between adjacent encoded-words is ignored, so this is lossless.
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}

// parseAddress parses one RFC 5322 address, refusing line breaks outright.
func parseAddress(s string) (*netmail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("address %q contains a line break", s)
	}
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q: %w", s, err)
	}
	return a, nil
}

// domainOf returns the domain of address, or "localhost" if it has none.
func domainOf(address string) string {
	if i := strings.LastIndexByte(address, '@'); i >= 0 && i < len(address)-1 {
		return address[i+1:]
	}
	return "localhost"
}

// isLocalhost matches the hosts to which net/smtp's PlainAuth agrees to send
// a password without TLS.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}
