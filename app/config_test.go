package app_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/imsrv/imsrv/app"
)

// cfgEmptyFile returns an empty YAML file, so that a test's Load never picks
// up a config.yaml from the working directory.
func cfgEmptyFile(t *testing.T) string {
	t.Helper()
	return cfgWriteFile(t, "")
}

func cfgWriteFile(t *testing.T, yamlText string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// cfgLoadEnv loads the config from the defaults and env only.
func cfgLoadEnv(t *testing.T, env ...string) (*app.Config, error) {
	t.Helper()
	return app.Load(app.LoadOptions{File: cfgEmptyFile(t), Env: append([]string{}, env...)})
}

func cfgMustLoadEnv(t *testing.T, env ...string) *app.Config {
	t.Helper()
	cfg, err := cfgLoadEnv(t, env...)
	if err != nil {
		t.Fatalf("Load(%q): %v", env, err)
	}
	return cfg
}

// cfgEnvName is the environment name of a config key.
func cfgEnvName(key string) string {
	return app.EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func cfgHostname() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "imsrv"
	}
	return h
}

// cfgBaseline is the Config produced by the built-in defaults alone. Tests
// compare against it rather than a literal, so that keys added later do not
// need every test touched.
func cfgBaseline(t *testing.T) *app.Config {
	t.Helper()
	return cfgMustLoadEnv(t)
}

// TestConfigDefaults checks the documented defaults (DESIGN.md's table and
// the limits PROTOCOL.md names).
func TestConfigDefaults(t *testing.T) {
	cfg := cfgBaseline(t)
	checks := []struct {
		key  string
		got  any
		want any
	}{
		{"roles", cfg.Roles, []string{"chat", "gate", "status", "verify"}},
		{"database.url", cfg.DatabaseURL, "sqlite://data/imsrv.db"},
		{"redis.url", cfg.RedisURL, ""},
		{"redis.prefix", cfg.RedisPrefix, ""},
		{"node.name", cfg.NodeName, cfgHostname()},
		{"log.level", cfg.LogLevel, "info"},
		{"log.format", cfg.LogFormat, "auto"},
		{"shutdown.timeout", cfg.ShutdownTimeout, 10 * time.Second},
		{"admin.listen", cfg.AdminListen, ""},
		{"gate.listen", cfg.Gate.Listen, ":8080"},
		{"gate.cors", cfg.Gate.CORS, []string{"*"}},
		{"gate.trustedproxies", len(cfg.Gate.TrustedProxies), 0},
		{"gate.maxbody", cfg.Gate.MaxBody, int64(65536)},
		{"verify.listen", cfg.Verify.Listen, ""},
		{"verify.sender", cfg.Verify.Sender, "log"},
		{"verify.ttl", cfg.Verify.TTL, 600 * time.Second},
		{"verify.attempts", cfg.Verify.Attempts, 5},
		{"verify.peremail", cfg.Verify.PerEmail, 5},
		{"verify.peraddr", cfg.Verify.PerAddr, 20},
		{"verify.window", cfg.Verify.Window, time.Hour},
		{"verify.sendtimeout", cfg.Verify.SendTimeout, 8 * time.Second},
		{"verify.smtp", cfg.Verify.SMTP, app.SMTPConfig{Port: 587, TLS: "starttls"}},
		{"status.listen", cfg.Status.Listen, ""},
		{"status.nodettl", cfg.Status.NodeTTL, 15 * time.Second},
		{"status.tokenttl", cfg.Status.TokenTTL, 24 * time.Hour},
		{"peers", cfg.Peers, app.PeersConfig{}},
		{"chat.listen", cfg.Chat.Listen, ":8090"},
		{"chat.advertise", cfg.Chat.Advertise, ""},
		{"chat.rpclisten", cfg.Chat.RPCListen, ":50055"},
		{"chat.rpcadvertise", cfg.Chat.RPCAdvertise, ""},
		{"chat.heartbeat", cfg.Chat.Heartbeat, 20 * time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("default %s = %#v, want %#v", c.key, c.got, c.want)
		}
	}
	for _, role := range app.AllRoles {
		if !cfg.Has(role) {
			t.Errorf("default config does not host %s", role)
		}
	}
	if cfg.Has("bogus") {
		t.Errorf("Has(bogus) = true")
	}
}

// TestConfigEveryKeyParsed: every key of Defaults() is read by the parser.
// Set to a value no key accepts as-is, a key must either be refused with an
// error naming it, or land somewhere in the Config; a key the parser ignores
// does neither.
func TestConfigEveryKeyParsed(t *testing.T) {
	base := cfgBaseline(t)
	const garbage = "\x01 not-a-valid-value"
	for key := range app.Defaults() {
		t.Run(key, func(t *testing.T) {
			cfg, err := cfgLoadEnv(t, cfgEnvName(key)+"="+garbage)
			if err != nil {
				if want := "config " + key + " (" + cfgEnvName(key) + ")"; !strings.Contains(err.Error(), want) {
					t.Fatalf("error does not name the key (%q): %v", want, err)
				}
				return
			}
			if reflect.DeepEqual(cfg, base) {
				t.Fatalf("%s=%q was neither refused nor reflected in the Config: the key is not parsed", cfgEnvName(key), garbage)
			}
		})
	}
}

// TestConfigDefaultsAsStrings feeds every default back as an environment
// string: each key must accept the string form of its own default (the
// environment only carries strings), and the result must equal the defaults.
func TestConfigDefaultsAsStrings(t *testing.T) {
	var env []string
	for key, v := range app.Defaults() {
		s := cfgSprint(v)
		if s == "" {
			continue // an empty environment value is not "unset"; skip keys defaulting to empty
		}
		env = append(env, cfgEnvName(key)+"="+s)
	}
	cfg := cfgMustLoadEnv(t, env...)
	if want := cfgBaseline(t); !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults given as strings:\n got %+v\nwant %+v", cfg, want)
	}
}

func cfgSprint(v any) string { return fmt.Sprint(v) }

// cfgKeyCase sets one key through its environment name to a valid value that
// differs from the default, and says where it must land in the Config.
type cfgKeyCase struct {
	key   string
	value string
	extra []string // other variables the value needs to be valid
	got   func(c *app.Config) any
	want  any
}

func cfgKeyCases() []cfgKeyCase {
	return []cfgKeyCase{
		{key: "roles", value: "gate, Verify ,status,verify", got: func(c *app.Config) any { return c.Roles },
			want: []string{"gate", "status", "verify"}},
		{key: "database.url", value: "postgres://imsrv:pw@db.internal:5432/imsrv?sslmode=disable",
			got: func(c *app.Config) any { return c.DatabaseURL }, want: "postgres://imsrv:pw@db.internal:5432/imsrv?sslmode=disable"},
		{key: "redis.url", value: "redis://127.0.0.1:6379/2", got: func(c *app.Config) any { return c.RedisURL },
			want: "redis://127.0.0.1:6379/2"},
		{key: "redis.prefix", value: "tenant-a:", got: func(c *app.Config) any { return c.RedisPrefix }, want: "tenant-a:"},
		{key: "node.name", value: "chat-7", got: func(c *app.Config) any { return c.NodeName }, want: "chat-7"},
		{key: "log.level", value: "DEBUG", got: func(c *app.Config) any { return c.LogLevel }, want: "debug"},
		{key: "log.format", value: "json", got: func(c *app.Config) any { return c.LogFormat }, want: "json"},
		{key: "shutdown.timeout", value: "3s", got: func(c *app.Config) any { return c.ShutdownTimeout }, want: 3 * time.Second},
		{key: "admin.listen", value: "127.0.0.1:9090", got: func(c *app.Config) any { return c.AdminListen }, want: "127.0.0.1:9090"},
		{key: "gate.listen", value: "127.0.0.1:18080", got: func(c *app.Config) any { return c.Gate.Listen }, want: "127.0.0.1:18080"},
		{key: "gate.cors", value: "http://a.example, http://b.example", got: func(c *app.Config) any { return c.Gate.CORS },
			want: []string{"http://a.example", "http://b.example"}},
		{key: "gate.trustedproxies", value: "10.1.2.3/8, 127.0.0.1,::1, ::ffff:192.168.1.7",
			got: func(c *app.Config) any { return c.Gate.TrustedProxies },
			want: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
				netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.1.7/32"),
			}},
		{key: "gate.maxbody", value: "1024", got: func(c *app.Config) any { return c.Gate.MaxBody }, want: int64(1024)},
		{key: "verify.listen", value: ":50051", got: func(c *app.Config) any { return c.Verify.Listen }, want: ":50051"},
		{key: "verify.sender", value: "smtp", extra: []string{"IMSRV_VERIFY_SMTP_HOST=mx.example.com", "IMSRV_VERIFY_SMTP_FROM=noreply@example.com"},
			got: func(c *app.Config) any { return c.Verify.Sender }, want: "smtp"},
		{key: "verify.ttl", value: "90s", got: func(c *app.Config) any { return c.Verify.TTL }, want: 90 * time.Second},
		{key: "verify.attempts", value: "3", got: func(c *app.Config) any { return c.Verify.Attempts }, want: 3},
		{key: "verify.peremail", value: "7", got: func(c *app.Config) any { return c.Verify.PerEmail }, want: 7},
		{key: "verify.peraddr", value: "70", got: func(c *app.Config) any { return c.Verify.PerAddr }, want: 70},
		{key: "verify.window", value: "30m", got: func(c *app.Config) any { return c.Verify.Window }, want: 30 * time.Minute},
		{key: "verify.sendtimeout", value: "2500ms", got: func(c *app.Config) any { return c.Verify.SendTimeout }, want: 2500 * time.Millisecond},
		{key: "verify.smtp.host", value: "smtp.example.com", got: func(c *app.Config) any { return c.Verify.SMTP.Host }, want: "smtp.example.com"},
		{key: "verify.smtp.port", value: "465", got: func(c *app.Config) any { return c.Verify.SMTP.Port }, want: 465},
		{key: "verify.smtp.user", value: "mailer", got: func(c *app.Config) any { return c.Verify.SMTP.User }, want: "mailer"},
		// A password is taken verbatim: surrounding spaces are part of it.
		{key: "verify.smtp.password", value: " s3cret pw ", got: func(c *app.Config) any { return c.Verify.SMTP.Password }, want: " s3cret pw "},
		{key: "verify.smtp.from", value: "imsrv <noreply@example.com>", got: func(c *app.Config) any { return c.Verify.SMTP.From },
			want: "imsrv <noreply@example.com>"},
		{key: "verify.smtp.tls", value: "TLS", got: func(c *app.Config) any { return c.Verify.SMTP.TLS }, want: "tls"},
		{key: "status.listen", value: ":50052", got: func(c *app.Config) any { return c.Status.Listen }, want: ":50052"},
		{key: "status.nodettl", value: "5s", got: func(c *app.Config) any { return c.Status.NodeTTL }, want: 5 * time.Second},
		{key: "status.tokenttl", value: "2h", got: func(c *app.Config) any { return c.Status.TokenTTL }, want: 2 * time.Hour},
		{key: "peers.verify", value: "verify.internal:50051", got: func(c *app.Config) any { return c.Peers.Verify }, want: "verify.internal:50051"},
		{key: "peers.status", value: "status.internal:50052", got: func(c *app.Config) any { return c.Peers.Status }, want: "status.internal:50052"},
		{key: "chat.listen", value: "0.0.0.0:9000", got: func(c *app.Config) any { return c.Chat.Listen }, want: "0.0.0.0:9000"},
		{key: "chat.advertise", value: "chat1.example.com:9000", got: func(c *app.Config) any { return c.Chat.Advertise }, want: "chat1.example.com:9000"},
		{key: "chat.rpclisten", value: "[::]:50056", got: func(c *app.Config) any { return c.Chat.RPCListen }, want: "[::]:50056"},
		{key: "chat.rpcadvertise", value: "10.0.0.5:50056", got: func(c *app.Config) any { return c.Chat.RPCAdvertise }, want: "10.0.0.5:50056"},
		{key: "chat.heartbeat", value: "45s", got: func(c *app.Config) any { return c.Chat.Heartbeat }, want: 45 * time.Second},
	}
}

// TestConfigEveryKeyFromEnv sets every key of Defaults() through its
// IMSRV_<SECTION>_<KEY> name and checks that it lands in the Config.
func TestConfigEveryKeyFromEnv(t *testing.T) {
	cases := cfgKeyCases()
	covered := map[string]bool{}
	for _, tc := range cases {
		covered[tc.key] = true
	}
	for key := range app.Defaults() {
		if !covered[key] {
			// TestConfigEveryKeyParsed still covers it generically.
			t.Logf("config key %q (%s) has no case in cfgKeyCases", key, cfgEnvName(key))
		}
	}
	def := cfgBaseline(t)
	var all []string
	for _, tc := range cases {
		if _, ok := app.Defaults()[tc.key]; !ok {
			t.Errorf("cfgKeyCases names %q, which is not in Defaults()", tc.key)
			continue
		}
		env := append([]string{cfgEnvName(tc.key) + "=" + tc.value}, tc.extra...)
		all = append(all, env...)
		t.Run(cfgEnvName(tc.key), func(t *testing.T) {
			if reflect.DeepEqual(tc.got(def), tc.want) {
				t.Fatalf("test value %v equals the default", tc.want)
			}
			cfg := cfgMustLoadEnv(t, env...)
			if got := tc.got(cfg); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s=%q: got %#v, want %#v", cfgEnvName(tc.key), tc.value, got, tc.want)
			}
		})
	}
	t.Run("all at once", func(t *testing.T) {
		cfg := cfgMustLoadEnv(t, all...)
		for _, tc := range cases {
			if tc.key == "verify.smtp.host" || tc.key == "verify.smtp.from" {
				continue // also set by verify.sender's extras; last one wins
			}
			if got := tc.got(cfg); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: got %#v, want %#v", tc.key, got, tc.want)
			}
		}
	})
}

// TestConfigDesignEnvNames pins the environment names DESIGN.md promises to
// ops scripts: each must map to its key.
func TestConfigDesignEnvNames(t *testing.T) {
	names := map[string]string{
		"IMSRV_DATABASE_URL":         "database.url",
		"IMSRV_REDIS_URL":            "redis.url",
		"IMSRV_NODE_NAME":            "node.name",
		"IMSRV_GATE_LISTEN":          "gate.listen",
		"IMSRV_VERIFY_LISTEN":        "verify.listen",
		"IMSRV_STATUS_LISTEN":        "status.listen",
		"IMSRV_PEERS_VERIFY":         "peers.verify",
		"IMSRV_PEERS_STATUS":         "peers.status",
		"IMSRV_CHAT_LISTEN":          "chat.listen",
		"IMSRV_CHAT_ADVERTISE":       "chat.advertise",
		"IMSRV_CHAT_RPCLISTEN":       "chat.rpclisten",
		"IMSRV_CHAT_RPCADVERTISE":    "chat.rpcadvertise",
		"IMSRV_CHAT_HEARTBEAT":       "chat.heartbeat",
		"IMSRV_VERIFY_SENDER":        "verify.sender",
		"IMSRV_VERIFY_SMTP_HOST":     "verify.smtp.host",
		"IMSRV_VERIFY_SMTP_PORT":     "verify.smtp.port",
		"IMSRV_VERIFY_SMTP_USER":     "verify.smtp.user",
		"IMSRV_VERIFY_SMTP_PASSWORD": "verify.smtp.password",
		"IMSRV_VERIFY_SMTP_FROM":     "verify.smtp.from",
		"IMSRV_VERIFY_SMTP_TLS":      "verify.smtp.tls",
		"IMSRV_VERIFY_TTL":           "verify.ttl",
	}
	byKey := map[string]cfgKeyCase{}
	for _, tc := range cfgKeyCases() {
		byKey[tc.key] = tc
	}
	for name, key := range names {
		t.Run(name, func(t *testing.T) {
			if got := cfgEnvName(key); got != name {
				t.Fatalf("key %s maps to %s, want %s", key, got, name)
			}
			tc, ok := byKey[key]
			if !ok {
				t.Fatalf("no case for %s", key)
			}
			cfg := cfgMustLoadEnv(t, append([]string{name + "=" + tc.value}, tc.extra...)...)
			if got := tc.got(cfg); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s=%q: got %#v, want %#v", name, tc.value, got, tc.want)
			}
		})
	}
	// The documented defaults.
	def := cfgMustLoadEnv(t)
	if def.DatabaseURL != "sqlite://data/imsrv.db" || def.RedisURL != "" || def.Gate.Listen != ":8080" ||
		def.Verify.Listen != "" || def.Status.Listen != "" || def.Chat.Listen != ":8090" ||
		def.Chat.RPCListen != ":50055" || def.Chat.Heartbeat != 20*time.Second ||
		def.Verify.Sender != "log" || def.Verify.TTL != 600*time.Second || def.NodeName != cfgHostname() {
		t.Fatalf("documented defaults differ: %+v", def)
	}
}

func TestConfigPrecedence(t *testing.T) {
	path := cfgWriteFile(t, `
roles: [gate, verify, status]
gate:
  listen: "127.0.0.1:1001"
  maxbody: 4096
chat:
  listen: "127.0.0.1:1002"
verify:
  ttl: 60s
  smtp:
    port: 2525
log:
  level: warn
`)
	cfg, err := app.Load(app.LoadOptions{
		File: path,
		Env: []string{
			"IMSRV_CHAT_LISTEN=127.0.0.1:2002",
			"IMSRV_VERIFY_TTL=120s",
			"IMSRV_LOG_LEVEL=error",
			"IMSRV_STATUS_NODETTL=7s",
			"IMSRV_ADMIN_LISTEN=127.0.0.1:2003",
		},
		Flags: map[string]any{
			"verify.ttl":   "180s",
			"admin.listen": "127.0.0.1:3003",
			"node.name":    "flag-node",
			"gate.maxbody": 8192, // flags may carry typed values
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what string
		got  any
		want any
	}{
		{"default only (chat.heartbeat)", cfg.Chat.Heartbeat, 20 * time.Second},
		{"file over default (roles)", cfg.Roles, []string{"gate", "status", "verify"}},
		{"file over default (gate.listen)", cfg.Gate.Listen, "127.0.0.1:1001"},
		{"file over default (verify.smtp.port)", cfg.Verify.SMTP.Port, 2525},
		{"env over file (chat.listen)", cfg.Chat.Listen, "127.0.0.1:2002"},
		{"env over file (log.level)", cfg.LogLevel, "error"},
		{"env over default (status.nodettl)", cfg.Status.NodeTTL, 7 * time.Second},
		{"flag over env over file (verify.ttl)", cfg.Verify.TTL, 180 * time.Second},
		{"flag over env (admin.listen)", cfg.AdminListen, "127.0.0.1:3003"},
		{"flag over default (node.name)", cfg.NodeName, "flag-node"},
		{"flag over file (gate.maxbody)", cfg.Gate.MaxBody, int64(8192)},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.what, c.got, c.want)
		}
	}
}

// TestConfigFileDefaultPath: with no File, ./config.yaml is read when present.
func TestConfigFileDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cfg, err := app.Load(app.LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, cfgBaseline(t)) {
		t.Fatalf("no config.yaml: got %+v, want the defaults", cfg)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte("gate:\n  listen: \"127.0.0.1:4321\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = app.Load(app.LoadOptions{Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gate.Listen != "127.0.0.1:4321" {
		t.Fatalf("./config.yaml not read: gate.listen = %q", cfg.Gate.Listen)
	}
}

func TestConfigFileErrors(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.yaml")
		_, err := app.Load(app.LoadOptions{File: path, Env: []string{}})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want one naming %s", err, path)
		}
	})
	t.Run("not YAML", func(t *testing.T) {
		path := cfgWriteFile(t, "gate: [unclosed\n")
		_, err := app.Load(app.LoadOptions{File: path, Env: []string{}})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want one naming %s", err, path)
		}
	})
	for _, tc := range []struct{ yaml, key string }{
		{"gate:\n  lisen: \":1\"\n", "gate.lisen"},
		{"verify:\n  smtp:\n    hots: mx\n", "verify.smtp.hots"},
		{"bogus: 1\n", "bogus"},
		{"Gate:\n  Listen: \":1\"\n", "Gate.Listen"}, // keys are lower-case
	} {
		t.Run("unknown key "+tc.key, func(t *testing.T) {
			path := cfgWriteFile(t, tc.yaml)
			_, err := app.Load(app.LoadOptions{File: path, Env: []string{}})
			if err == nil || !strings.Contains(err.Error(), `"`+tc.key+`"`) || !strings.Contains(err.Error(), "unknown key") {
				t.Fatalf("err = %v, want unknown key %q", err, tc.key)
			}
		})
	}
	t.Run("bad value in file names the key", func(t *testing.T) {
		path := cfgWriteFile(t, "verify:\n  ttl: 600\nchat:\n  listen: \":70000\"\n")
		_, err := app.Load(app.LoadOptions{File: path, Env: []string{}})
		if err == nil || !strings.Contains(err.Error(), "verify.ttl") || !strings.Contains(err.Error(), "chat.listen") {
			t.Fatalf("err = %v, want verify.ttl and chat.listen named", err)
		}
	})
}

// TestConfigIgnoresForeignEnv: IMSRV_TEST_* (the test suite's own
// variables), other prefixes and wrong-case names are not config.
func TestConfigIgnoresForeignEnv(t *testing.T) {
	cfg := cfgMustLoadEnv(t,
		"IMSRV_TEST_REDIS_URL=redis://127.0.0.1:6379/0",
		"IMSRV_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable",
		"IMSRV_TEST_ANYTHING=not even valid",
		"IMSRV_GATE_LISEN=typo",
		"IMSRV_=x",
		"IMSRV",
		"DATABASE_URL=mysql://elsewhere",
		"imsrv_gate_listen=:1",
		"GATE_LISTEN=:2",
	)
	if !reflect.DeepEqual(cfg, cfgBaseline(t)) {
		t.Fatalf("foreign variables changed the config: %+v", cfg)
	}
}

// TestConfigNilEnvReadsProcess: a nil Env means the process environment.
func TestConfigNilEnvReadsProcess(t *testing.T) {
	t.Setenv("IMSRV_GATE_LISTEN", "127.0.0.1:5555")
	t.Setenv("IMSRV_TEST_REDIS_URL", "garbage://")
	cfg, err := app.Load(app.LoadOptions{File: cfgEmptyFile(t)})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gate.Listen != "127.0.0.1:5555" {
		t.Fatalf("gate.listen = %q, want the process environment's", cfg.Gate.Listen)
	}
}

func TestConfigBadValues(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		key  string // the key the error must name
		also string // another substring the error must contain
	}{
		{"unknown role", []string{"IMSRV_ROLES=gate,bogus"}, "roles", "bogus"},
		{"no role", []string{"IMSRV_ROLES= , "}, "roles", "no role"},
		{"duration without unit", []string{"IMSRV_VERIFY_TTL=600"}, "verify.ttl", "600"},
		{"unparsable duration", []string{"IMSRV_VERIFY_TTL=abc"}, "verify.ttl", "abc"},
		{"zero duration", []string{"IMSRV_VERIFY_TTL=0s"}, "verify.ttl", "positive"},
		{"negative duration", []string{"IMSRV_CHAT_HEARTBEAT=-5s"}, "chat.heartbeat", "positive"},
		{"bare shutdown timeout", []string{"IMSRV_SHUTDOWN_TIMEOUT=10"}, "shutdown.timeout", "10"},
		{"bad window", []string{"IMSRV_VERIFY_WINDOW=1 hour"}, "verify.window", "1 hour"},
		{"database scheme", []string{"IMSRV_DATABASE_URL=mysql://u@h/db"}, "database.url", "mysql"},
		{"database without scheme", []string{"IMSRV_DATABASE_URL=data/imsrv.db"}, "database.url", "scheme"},
		{"database empty", []string{"IMSRV_DATABASE_URL="}, "database.url", "empty"},
		{"redis scheme", []string{"IMSRV_REDIS_URL=http://127.0.0.1:6379"}, "redis.url", "http"},
		{"redis host:port only", []string{"IMSRV_REDIS_URL=localhost:6379"}, "redis.url", "scheme"},
		{"listen without port", []string{"IMSRV_GATE_LISTEN=localhost"}, "gate.listen", "localhost"},
		{"listen empty", []string{"IMSRV_GATE_LISTEN="}, "gate.listen", "host:port"},
		{"listen port out of range", []string{"IMSRV_CHAT_LISTEN=:70000"}, "chat.listen", "port"},
		{"listen negative port", []string{"IMSRV_CHAT_RPCLISTEN=:-1"}, "chat.rpclisten", "port"},
		{"listen named port", []string{"IMSRV_ADMIN_LISTEN=:http"}, "admin.listen", "port"},
		{"peer without port", []string{"IMSRV_PEERS_VERIFY=verify.internal"}, "peers.verify", "host:port"},
		{"advertise bad port", []string{"IMSRV_CHAT_ADVERTISE=chat.example.com:99999"}, "chat.advertise", "port"},
		{"smtp port zero", []string{"IMSRV_VERIFY_SMTP_PORT=0"}, "verify.smtp.port", "range"},
		{"smtp port too big", []string{"IMSRV_VERIFY_SMTP_PORT=65536"}, "verify.smtp.port", "range"},
		{"smtp port not a number", []string{"IMSRV_VERIFY_SMTP_PORT=smtp"}, "verify.smtp.port", "integer"},
		{"smtp sender without host", []string{"IMSRV_VERIFY_SENDER=smtp", "IMSRV_VERIFY_SMTP_FROM=a@b.c"}, "verify.smtp.host", "smtp"},
		{"smtp sender without from", []string{"IMSRV_VERIFY_SENDER=smtp", "IMSRV_VERIFY_SMTP_HOST=mx"}, "verify.smtp.from", "smtp"},
		{"unknown sender", []string{"IMSRV_VERIFY_SENDER=pigeon"}, "verify.sender", "pigeon"},
		{"unknown smtp tls", []string{"IMSRV_VERIFY_SMTP_TLS=ssl"}, "verify.smtp.tls", "ssl"},
		{"unknown log level", []string{"IMSRV_LOG_LEVEL=verbose"}, "log.level", "verbose"},
		{"unknown log format", []string{"IMSRV_LOG_FORMAT=xml"}, "log.format", "xml"},
		{"maxbody too small", []string{"IMSRV_GATE_MAXBODY=10"}, "gate.maxbody", "range"},
		{"attempts zero", []string{"IMSRV_VERIFY_ATTEMPTS=0"}, "verify.attempts", "range"},
		{"peremail not a number", []string{"IMSRV_VERIFY_PEREMAIL=five"}, "verify.peremail", "five"},
		{"trusted proxy", []string{"IMSRV_GATE_TRUSTEDPROXIES=10.0.0.0/8,proxy.local"}, "gate.trustedproxies", "proxy.local"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cfgLoadEnv(t, tc.env...)
			if err == nil {
				t.Fatalf("Load(%q) succeeded, want an error naming %s", tc.env, tc.key)
			}
			msg := err.Error()
			if !strings.Contains(msg, "config "+tc.key+" ("+cfgEnvName(tc.key)+")") {
				t.Errorf("error %q does not name %s (%s)", msg, tc.key, cfgEnvName(tc.key))
			}
			if !strings.Contains(msg, tc.also) {
				t.Errorf("error %q does not mention %q", msg, tc.also)
			}
		})
	}
}

// TestConfigSeveralErrors: every bad value is reported, not just the first.
func TestConfigSeveralErrors(t *testing.T) {
	_, err := cfgLoadEnv(t,
		"IMSRV_ROLES=bogus",
		"IMSRV_VERIFY_TTL=600",
		"IMSRV_DATABASE_URL=mysql://x",
		"IMSRV_REDIS_URL=memcached://x",
		"IMSRV_GATE_LISTEN=nope",
		"IMSRV_VERIFY_SMTP_PORT=99999",
		"IMSRV_VERIFY_SENDER=smtp",
	)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, key := range []string{"roles", "verify.ttl", "database.url", "redis.url", "gate.listen", "verify.smtp.port", "verify.smtp.host", "verify.smtp.from"} {
		if !strings.Contains(err.Error(), "config "+key+" ") {
			t.Errorf("error does not report %s:\n%v", key, err)
		}
	}
}

// TestConfigRolesForms: roles accepts a YAML list, "all" mixed with others,
// any case, and duplicates.
func TestConfigRolesForms(t *testing.T) {
	all := []string{"chat", "gate", "status", "verify"}
	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"all", all},
		{"ALL", all},
		{"gate,all", all},
		{"chat", []string{"chat"}},
		{" chat , chat ,STATUS", []string{"chat", "status"}},
	} {
		cfg := cfgMustLoadEnv(t, "IMSRV_ROLES="+tc.env)
		if !slices.Equal(cfg.Roles, tc.want) {
			t.Errorf("IMSRV_ROLES=%q: roles %v, want %v", tc.env, cfg.Roles, tc.want)
		}
	}
	cfg, err := app.Load(app.LoadOptions{File: cfgWriteFile(t, "roles:\n  - chat\n  - status\n"), Env: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Roles, []string{"chat", "status"}) {
		t.Errorf("YAML list roles: %v", cfg.Roles)
	}
}

// TestConfigRepositoryFile checks the shipped ../config.yaml: it loads, it
// lists every key of Defaults() with its default value (so it changes
// nothing as shipped), and it names each key's environment variable.
func TestConfigRepositoryFile(t *testing.T) {
	const path = "../config.yaml"
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		t.Skip("../config.yaml does not exist yet (it is being written); skipping the shipped-config check")
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := app.Load(app.LoadOptions{File: path, Env: []string{}})
	if err != nil {
		t.Fatalf("the shipped config.yaml does not load: %v", err)
	}
	if want := cfgBaseline(t); !reflect.DeepEqual(cfg, want) {
		t.Errorf("the shipped config.yaml changes the defaults:\n got %+v\nwant %+v", cfg, want)
	}

	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatal(err)
	}
	for key, def := range app.Defaults() {
		if !k.Exists(key) {
			t.Errorf("config.yaml does not list %s", key)
			continue
		}
		if got := cfgSprint(k.Get(key)); got != cfgSprint(def) {
			t.Errorf("config.yaml: %s = %q, want the default %q", key, got, cfgSprint(def))
		}
		if !strings.Contains(string(raw), cfgEnvName(key)) {
			t.Errorf("config.yaml does not mention %s (the environment name of %s)", cfgEnvName(key), key)
		}
	}
}
