package verify

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/mail"
	"strings"
	"time"

	"github.com/imsrv/imsrv/platform/kv"
	imail "github.com/imsrv/imsrv/platform/mail"
)

// Config holds the verify module's limits. Zero values are replaced by the
// defaults documented on each field.
type Config struct {
	TTL         time.Duration // code lifetime; default 600s
	MaxAttempts int           // wrong attempts before a code is invalidated; default 5
	PerEmail    int           // codes mailed per e-mail per Window; default 5
	PerAddr     int           // codes mailed per client address per Window; default 20
	Window      time.Duration // rate-limit window; default 1h
	SendTimeout time.Duration // bound on one mail delivery; default 8s
	Subject     string        // mail subject; default "Your imsrv verification code"
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = 600 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.PerEmail <= 0 {
		c.PerEmail = 5
	}
	if c.PerAddr <= 0 {
		c.PerAddr = 20
	}
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 8 * time.Second
	}
	if c.Subject == "" {
		c.Subject = "Your imsrv verification code"
	}
	return c
}

// Module is the in-process verify.Service: codes live in the KV store as
// code_<email> (the llfc key), wrong attempts in codetries_<email>, and the
// fixed-window send counters in codecap_email_<email> / codecap_addr_<addr>.
type Module struct {
	cfg    Config
	kv     kv.Store
	mail   imail.Sender
	logger *slog.Logger
}

var _ Service = (*Module)(nil)

// New returns the verify module. It does no I/O.
func New(cfg Config, store kv.Store, sender imail.Sender, logger *slog.Logger) *Module {
	return &Module{cfg: cfg.withDefaults(), kv: store, mail: sender, logger: logger}
}

// NormalizeEmail validates a bare e-mail address ("a@b.c", no display name) and
// returns the key form used for storage and uniqueness: trimmed and lower-cased.
func NormalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > 254 {
		return "", ErrInvalidEmail
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return "", ErrInvalidEmail
	}
	return strings.ToLower(email), nil
}

func codeKey(email string) string  { return "code_" + email }
func triesKey(email string) string { return "codetries_" + email }

// SendCode implements Service.
func (m *Module) SendCode(ctx context.Context, req SendRequest) error {
	email, err := NormalizeEmail(req.Email)
	if err != nil {
		return err
	}
	n, err := m.kv.Incr(ctx, "codecap_email_"+email, m.cfg.Window)
	if err != nil {
		return fmt.Errorf("verify: count sends to %s: %w", email, err)
	}
	if n > int64(m.cfg.PerEmail) {
		return fmt.Errorf("%w: %d per %s for one e-mail", ErrRateLimited, m.cfg.PerEmail, m.cfg.Window)
	}
	if req.ClientAddr != "" {
		n, err := m.kv.Incr(ctx, "codecap_addr_"+req.ClientAddr, m.cfg.Window)
		if err != nil {
			return fmt.Errorf("verify: count sends from %s: %w", req.ClientAddr, err)
		}
		if n > int64(m.cfg.PerAddr) {
			return fmt.Errorf("%w: %d per %s from one address", ErrRateLimited, m.cfg.PerAddr, m.cfg.Window)
		}
	}
	code, err := m.liveOrNewCode(ctx, email)
	if err != nil {
		return err
	}
	sendCtx, cancel := context.WithTimeout(ctx, m.cfg.SendTimeout)
	defer cancel()
	msg := imail.Message{
		To:      strings.TrimSpace(req.Email),
		Subject: m.cfg.Subject,
		Body: fmt.Sprintf("Your verification code is %s.\r\nIt is valid for %s. If you did not ask for it, ignore this mail.\r\n\r\n您的验证码是 %s，%d 分钟内有效。\r\n",
			code, m.cfg.TTL, code, int(m.cfg.TTL.Minutes())),
	}
	if err := m.mail.Send(sendCtx, msg); err != nil {
		return fmt.Errorf("%w: %v", ErrDelivery, err)
	}
	return nil
}

// liveOrNewCode returns the live code for email, or stores a fresh one. A
// resend never extends the live code's expiry.
func (m *Module) liveOrNewCode(ctx context.Context, email string) (string, error) {
	for range 3 {
		code, err := m.kv.Get(ctx, codeKey(email))
		if err == nil {
			return code, nil
		}
		if !errors.Is(err, kv.ErrNotFound) {
			return "", fmt.Errorf("verify: read code: %w", err)
		}
		code, err = newCode()
		if err != nil {
			return "", err
		}
		ok, err := m.kv.SetNX(ctx, codeKey(email), code, m.cfg.TTL)
		if err != nil {
			return "", fmt.Errorf("verify: store code: %w", err)
		}
		if ok {
			if _, err := m.kv.Del(ctx, triesKey(email)); err != nil {
				return "", fmt.Errorf("verify: reset attempts: %w", err)
			}
			return code, nil
		}
		// Lost a race with a concurrent request: read the winner's code.
	}
	return "", fmt.Errorf("verify: code for %s kept changing", email)
}

func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(10000))
	if err != nil {
		return "", fmt.Errorf("verify: random code: %w", err)
	}
	return fmt.Sprintf("%04d", n.Int64()), nil
}

// CheckCode implements Service.
func (m *Module) CheckCode(ctx context.Context, email, code string) error {
	key, err := NormalizeEmail(email)
	if err != nil {
		return ErrNoCode
	}
	live, err := m.kv.Get(ctx, codeKey(key))
	if errors.Is(err, kv.ErrNotFound) {
		return ErrNoCode
	}
	if err != nil {
		return fmt.Errorf("verify: read code: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(live), []byte(code)) != 1 {
		return m.wrongAttempt(ctx, key)
	}
	return nil
}

// ConsumeCode implements Service.
func (m *Module) ConsumeCode(ctx context.Context, email, code string) error {
	key, err := NormalizeEmail(email)
	if err != nil {
		return ErrNoCode
	}
	ok, err := m.kv.CompareAndDelete(ctx, codeKey(key), code)
	if err != nil {
		return fmt.Errorf("verify: consume code: %w", err)
	}
	if ok {
		if _, err := m.kv.Del(ctx, triesKey(key)); err != nil {
			m.logger.WarnContext(ctx, "verify: clear attempts after use", "err", err)
		}
		return nil
	}
	if _, err := m.kv.Get(ctx, codeKey(key)); errors.Is(err, kv.ErrNotFound) {
		return ErrNoCode
	} else if err != nil {
		return fmt.Errorf("verify: read code: %w", err)
	}
	return m.wrongAttempt(ctx, key)
}

// wrongAttempt counts a wrong code and invalidates the code after MaxAttempts.
func (m *Module) wrongAttempt(ctx context.Context, email string) error {
	n, err := m.kv.Incr(ctx, triesKey(email), m.cfg.TTL)
	if err != nil {
		return fmt.Errorf("verify: count attempt: %w", err)
	}
	if n >= int64(m.cfg.MaxAttempts) {
		if _, err := m.kv.Del(ctx, codeKey(email), triesKey(email)); err != nil {
			return fmt.Errorf("verify: invalidate code: %w", err)
		}
		m.logger.InfoContext(ctx, "verification code invalidated after wrong attempts", "attempts", n)
	}
	return ErrWrongCode
}
