package app

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// Roles a process can host.
const (
	RoleGate   = "gate"
	RoleVerify = "verify"
	RoleStatus = "status"
	RoleChat   = "chat"
)

// AllRoles is every role, in start-up order.
var AllRoles = []string{RoleVerify, RoleStatus, RoleChat, RoleGate}

// EnvPrefix is the prefix of every environment variable imsrv reads.
const EnvPrefix = "IMSRV_"

// Defaults is every config key with its default value. Keys are single
// lowercase words per level so that IMSRV_<SECTION>_<KEY> maps one-to-one to
// section.key. config.yaml at the repository root documents each of them.
func Defaults() map[string]any {
	return map[string]any{
		"roles":                "all",
		"database.url":         "sqlite://data/imsrv.db",
		"redis.url":            "",
		"redis.prefix":         "",
		"node.name":            "",
		"log.level":            "info",
		"log.format":           "auto",
		"shutdown.timeout":     "10s",
		"admin.listen":         "",
		"admin.token":          "",
		"gate.listen":          ":8080",
		"gate.cors":            "*",
		"gate.trustedproxies":  "",
		"gate.maxbody":         65536,
		"verify.listen":        "",
		"verify.sender":        "log",
		"verify.ttl":           "600s",
		"verify.attempts":      5,
		"verify.peremail":      5,
		"verify.peraddr":       20,
		"verify.window":        "1h",
		"verify.sendtimeout":   "8s",
		"verify.smtp.host":     "",
		"verify.smtp.port":     587,
		"verify.smtp.user":     "",
		"verify.smtp.password": "",
		"verify.smtp.from":     "",
		"verify.smtp.tls":      "starttls",
		"status.listen":        "",
		"status.nodettl":       "15s",
		"status.tokenttl":      "24h",
		"peers.verify":         "",
		"peers.status":         "",
		"chat.listen":          ":8090",
		"chat.advertise":       "",
		"chat.rpclisten":       ":50055",
		"chat.rpcadvertise":    "",
		"chat.heartbeat":       "20s",
		"chat.logintimeout":    "10s",
		"chat.maxconns":        100000,
		"chat.sendqueue":       512,
		"chat.legacygap":       "10ms",
		"chat.writetimeout":    "10s",
		"chat.maxbody":         65535,
		"chat.maxtext":         32768,
		"chat.batch":           512,
		"chat.batchwait":       "2ms",
		"chat.storequeue":      8192,
	}
}

// Config is the validated configuration of one process.
type Config struct {
	Roles []string

	DatabaseURL string
	RedisURL    string
	RedisPrefix string
	NodeName    string

	LogLevel  string
	LogFormat string

	ShutdownTimeout time.Duration
	AdminListen     string
	// AdminToken enables the gate's admin API (bearer token); empty = off.
	AdminToken string

	Gate   GateConfig
	Verify VerifyConfig
	Status StatusConfig
	Peers  PeersConfig
	Chat   ChatConfig
}

// GateConfig is the gate.* section.
type GateConfig struct {
	Listen         string
	CORS           []string
	TrustedProxies []netip.Prefix
	MaxBody        int64
}

// VerifyConfig is the verify.* section.
type VerifyConfig struct {
	Listen      string
	Sender      string
	TTL         time.Duration
	Attempts    int
	PerEmail    int
	PerAddr     int
	Window      time.Duration
	SendTimeout time.Duration
	SMTP        SMTPConfig
}

// SMTPConfig is the verify.smtp.* section.
type SMTPConfig struct {
	Host     string
	Port     int
	User     string
	Password string
	From     string
	TLS      string
}

// StatusConfig is the status.* section.
type StatusConfig struct {
	Listen   string
	NodeTTL  time.Duration
	TokenTTL time.Duration
}

// PeersConfig is the peers.* section: where modules this process does not host live.
type PeersConfig struct {
	Verify string
	Status string
}

// ChatConfig is the chat.* section.
type ChatConfig struct {
	Listen       string
	Advertise    string
	RPCListen    string
	RPCAdvertise string
	Heartbeat    time.Duration
	LoginTimeout time.Duration
	MaxConns     int
	SendQueue    int
	LegacyGap    time.Duration
	WriteTimeout time.Duration
	MaxBody      int
	MaxText      int           // longest stored text, bytes
	Batch        int           // most messages per group commit
	BatchWait    time.Duration // how long a group commit waits to fill
	StoreQueue   int           // pending stores before senders block
}

// Has reports whether the process hosts role.
func (c *Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// LoadOptions says where configuration comes from besides the defaults.
type LoadOptions struct {
	// File is a YAML file; empty means ./config.yaml when it exists.
	File string
	// Env is the environment as KEY=VALUE pairs; nil means os.Environ().
	Env []string
	// Flags are command-line overrides, already keyed (e.g. "gate.listen").
	Flags map[string]any
}

// Load merges defaults < config file < IMSRV_* environment < flags and
// validates the result. Every error names the offending key.
func Load(opts LoadOptions) (*Config, error) {
	k := koanf.New(".")
	defaults := Defaults()
	if err := k.Load(confmap.Provider(defaults, "."), nil); err != nil {
		return nil, fmt.Errorf("config: defaults: %w", err)
	}
	path := opts.File
	if path == "" {
		if _, err := os.Stat("config.yaml"); err == nil {
			path = "config.yaml"
		}
	}
	if path != "" {
		fk := koanf.New(".")
		if err := fk.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", path, err)
		}
		for _, key := range fk.Keys() {
			// A section whose keys are all commented out parses as null (or
			// {}): it sets nothing, so it is not an unknown key.
			switch v := fk.Get(key).(type) {
			case nil:
				fk.Delete(key)
				continue
			case map[string]any:
				if len(v) == 0 {
					fk.Delete(key)
					continue
				}
			}
			if _, ok := defaults[key]; !ok {
				return nil, fmt.Errorf("config: %s: unknown key %q", path, key)
			}
		}
		if err := k.Merge(fk); err != nil {
			return nil, fmt.Errorf("config: merge %s: %w", path, err)
		}
	}
	environ := opts.Env
	if environ == nil {
		environ = os.Environ()
	}
	envProvider := env.Provider(".", env.Opt{
		Prefix: EnvPrefix,
		TransformFunc: func(key, value string) (string, any) {
			key = strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(key, EnvPrefix)), "_", ".")
			if _, ok := defaults[key]; !ok {
				return "", nil // not ours (e.g. IMSRV_TEST_*): ignored
			}
			return key, value
		},
		EnvironFunc: func() []string { return environ },
	})
	if err := k.Load(envProvider, nil); err != nil {
		return nil, fmt.Errorf("config: environment: %w", err)
	}
	if len(opts.Flags) > 0 {
		if err := k.Load(confmap.Provider(opts.Flags, "."), nil); err != nil {
			return nil, fmt.Errorf("config: flags: %w", err)
		}
	}
	return parse(k)
}

// parser reads typed values and collects the first error per key.
type parser struct {
	k    *koanf.Koanf
	errs []error
}

func (p *parser) fail(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("config %s (%s%s): %s", key, EnvPrefix,
		strings.ToUpper(strings.ReplaceAll(key, ".", "_")), fmt.Sprintf(format, args...)))
}

func (p *parser) str(key string) string { return strings.TrimSpace(p.k.String(key)) }

func (p *parser) list(key string) []string {
	var out []string
	switch v := p.k.Get(key).(type) {
	case string:
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []any:
		for _, s := range v {
			if s := strings.TrimSpace(fmt.Sprint(s)); s != "" {
				out = append(out, s)
			}
		}
	case nil:
	default:
		p.fail(key, "want a list or a comma-separated string, got %T", v)
	}
	return out
}

func (p *parser) integer(key string, min, max int64) int64 {
	s := fmt.Sprint(p.k.Get(key))
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		p.fail(key, "%q is not an integer", s)
		return 0
	}
	if n < min || n > max {
		p.fail(key, "%d is out of range [%d, %d]", n, min, max)
	}
	return n
}

// duration accepts Go durations with a unit ("600s", "1h30m"): a bare number
// is refused rather than guessed.
func (p *parser) duration(key string) time.Duration {
	s := p.str(key)
	d, err := time.ParseDuration(s)
	if err != nil {
		p.fail(key, "%q is not a duration (use a unit, e.g. 600s or 10m)", s)
		return 0
	}
	if d <= 0 {
		p.fail(key, "%q must be positive", s)
	}
	return d
}

func (p *parser) oneOf(key string, allowed ...string) string {
	s := strings.ToLower(p.str(key))
	if !slices.Contains(allowed, s) {
		p.fail(key, "%q is not one of %s", s, strings.Join(allowed, ", "))
	}
	return s
}

// advertise validates an address others dial: a host and a port in 1-65535;
// empty means "derive it from the listener".
func (p *parser) advertise(key string) string {
	s := p.str(key)
	if s == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		p.fail(key, "%q is not a dialable host:port (a host and a port in 1-65535)", s)
	}
	return s
}

// minTokenLen is the shortest accepted secret token: guessing one of 16
// random characters is out of reach even without rate limits.
const minTokenLen = 16

// token validates a bearer token: empty (feature off), or at least
// minTokenLen visible ASCII characters, so that it fits an HTTP header as is.
// The value is never echoed in the error.
func (p *parser) token(key string) string {
	s := p.k.String(key)
	if s == "" {
		return ""
	}
	if len(s) < minTokenLen {
		p.fail(key, "too short: use at least %d characters (e.g. openssl rand -hex 32)", minTokenLen)
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			p.fail(key, "may contain only visible ASCII characters (no spaces)")
			break
		}
	}
	return s
}

// listen validates a host:port listen address; empty is allowed when optional.
func (p *parser) listen(key string, optional bool) string {
	s := p.str(key)
	if s == "" && optional {
		return ""
	}
	if _, port, err := net.SplitHostPort(s); err != nil {
		p.fail(key, "%q is not a host:port address", s)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.fail(key, "%q has an invalid port", s)
	}
	return s
}

func (p *parser) urlOf(key string, schemes ...string) string {
	s := p.str(key)
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		p.fail(key, "%q is not a URL: %v", s, err)
		return s
	}
	if !slices.Contains(schemes, u.Scheme) {
		p.fail(key, "scheme %q is not supported (want %s)", u.Scheme, strings.Join(schemes, ", "))
	}
	return s
}

func parse(k *koanf.Koanf) (*Config, error) {
	p := &parser{k: k}
	c := &Config{}

	for _, r := range p.list("roles") {
		r = strings.ToLower(r)
		switch {
		case r == "all":
			c.Roles = append(c.Roles, AllRoles...)
		case slices.Contains(AllRoles, r):
			c.Roles = append(c.Roles, r)
		default:
			p.fail("roles", "unknown role %q (want any of gate, verify, status, chat, or all)", r)
		}
	}
	slices.Sort(c.Roles)
	c.Roles = slices.Compact(c.Roles)
	if len(c.Roles) == 0 && len(p.errs) == 0 {
		p.fail("roles", "no role given")
	}

	c.DatabaseURL = p.urlOf("database.url", "postgres", "postgresql", "sqlite")
	if c.DatabaseURL == "" {
		p.fail("database.url", "must not be empty")
	}
	c.RedisURL = p.urlOf("redis.url", "redis", "rediss")
	c.RedisPrefix = p.str("redis.prefix")
	c.NodeName = p.str("node.name")
	if c.NodeName == "" {
		c.NodeName, _ = os.Hostname()
		if c.NodeName == "" {
			c.NodeName = "imsrv"
		}
	}
	c.LogLevel = p.oneOf("log.level", "debug", "info", "warn", "error")
	c.LogFormat = p.oneOf("log.format", "auto", "text", "json")
	c.ShutdownTimeout = p.duration("shutdown.timeout")
	c.AdminListen = p.listen("admin.listen", true)
	c.AdminToken = p.token("admin.token")

	c.Gate = GateConfig{
		Listen:  p.listen("gate.listen", false),
		CORS:    p.list("gate.cors"),
		MaxBody: p.integer("gate.maxbody", 1024, 16<<20),
	}
	for _, s := range p.list("gate.trustedproxies") {
		pre, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				p.fail("gate.trustedproxies", "%q is neither an IP address nor a CIDR prefix", s)
				continue
			}
			pre = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		c.Gate.TrustedProxies = append(c.Gate.TrustedProxies, pre.Masked())
	}

	c.Verify = VerifyConfig{
		Listen:      p.listen("verify.listen", true),
		Sender:      p.oneOf("verify.sender", "log", "smtp"),
		TTL:         p.duration("verify.ttl"),
		Attempts:    int(p.integer("verify.attempts", 1, 100)),
		PerEmail:    int(p.integer("verify.peremail", 1, 1_000_000)),
		PerAddr:     int(p.integer("verify.peraddr", 1, 1_000_000)),
		Window:      p.duration("verify.window"),
		SendTimeout: p.duration("verify.sendtimeout"),
		SMTP: SMTPConfig{
			Host:     p.str("verify.smtp.host"),
			Port:     int(p.integer("verify.smtp.port", 1, 65535)),
			User:     p.str("verify.smtp.user"),
			Password: p.k.String("verify.smtp.password"),
			From:     p.str("verify.smtp.from"),
			TLS:      p.oneOf("verify.smtp.tls", "none", "starttls", "tls"),
		},
	}
	if c.Verify.Sender == "smtp" {
		if c.Verify.SMTP.Host == "" {
			p.fail("verify.smtp.host", "required when verify.sender is smtp")
		}
		if c.Verify.SMTP.From == "" {
			p.fail("verify.smtp.from", "required when verify.sender is smtp")
		}
	}

	c.Status = StatusConfig{
		Listen:   p.listen("status.listen", true),
		NodeTTL:  p.duration("status.nodettl"),
		TokenTTL: p.duration("status.tokenttl"),
	}
	c.Peers = PeersConfig{
		Verify: p.listen("peers.verify", true),
		Status: p.listen("peers.status", true),
	}
	c.Chat = ChatConfig{
		Listen:       p.listen("chat.listen", false),
		Advertise:    p.advertise("chat.advertise"),
		RPCListen:    p.listen("chat.rpclisten", false),
		RPCAdvertise: p.advertise("chat.rpcadvertise"),
		Heartbeat:    p.duration("chat.heartbeat"),
		LoginTimeout: p.duration("chat.logintimeout"),
		MaxConns:     int(p.integer("chat.maxconns", 1, 10_000_000)),
		SendQueue:    int(p.integer("chat.sendqueue", 1, 1_000_000)),
		LegacyGap:    p.duration("chat.legacygap"),
		WriteTimeout: p.duration("chat.writetimeout"),
		MaxBody:      int(p.integer("chat.maxbody", 1024, 65535)),
		MaxText:      int(p.integer("chat.maxtext", 1, 65535)),
		Batch:        int(p.integer("chat.batch", 1, 10000)),
		BatchWait:    p.duration("chat.batchwait"),
		StoreQueue:   int(p.integer("chat.storequeue", 1, 1_000_000)),
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// advertiseFor derives host:port to advertise from a bound listener address:
// the configured advertise address when set, else 127.0.0.1 (or the listen
// host when it is specific) with the bound port.
func advertiseFor(configured string, bound net.Addr) string {
	if configured != "" {
		return configured
	}
	host := "127.0.0.1"
	if ta, ok := bound.(*net.TCPAddr); ok {
		if !ta.IP.IsUnspecified() && ta.IP != nil {
			host = ta.IP.String()
		}
		return net.JoinHostPort(host, strconv.Itoa(ta.Port))
	}
	return bound.String()
}
