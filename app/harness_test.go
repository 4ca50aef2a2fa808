package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/imsrv/imsrv/app"
	"github.com/imsrv/imsrv/platform/kv/kvtest"
	ilog "github.com/imsrv/imsrv/platform/log"
	"github.com/imsrv/imsrv/platform/mail/mailtest"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

// backend is one storage combination the end-to-end tests run on.
type backend struct {
	name string
	env  func(t *testing.T) []string
}

// backends returns SQLite + in-memory KV (always) and PostgreSQL + Redis
// (skipped unless IMSRV_TEST_POSTGRES_URL and IMSRV_TEST_REDIS_URL are set).
func backends() []backend {
	return []backend{
		{"sqlite+memory", func(t *testing.T) []string {
			return []string{"IMSRV_DATABASE_URL=sqlite://" + t.TempDir() + "/imsrv.db"}
		}},
		{"postgres+redis", func(t *testing.T) []string {
			redisURL := os.Getenv("IMSRV_TEST_REDIS_URL")
			if redisURL == "" {
				t.Skip("IMSRV_TEST_REDIS_URL not set")
			}
			prefix := "test-" + randHex(6) + ":"
			t.Cleanup(func() { kvtest.DropPrefix(t, redisURL, prefix) })
			return []string{
				"IMSRV_DATABASE_URL=" + sqldbtest.PostgresURL(t),
				"IMSRV_REDIS_URL=" + redisURL,
				"IMSRV_REDIS_PREFIX=" + prefix,
			}
		}},
	}
}

func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testApp is an App running in-process on :0 listeners with mail going to an
// SMTP sink.
type testApp struct {
	*app.App
	Sink      *mailtest.Sink
	URL       string        // gate base URL
	Heartbeat time.Duration // chat.heartbeat; test clients beat at a third of it
	Stop      func()        // graceful shutdown, as on SIGTERM (also run at cleanup)
}

// startApp starts an App with the backend's storage and extra IMSRV_* env,
// and stops it (gracefully, asserting a clean exit) at cleanup.
func startApp(t *testing.T, b backend, extraEnv ...string) *testApp {
	t.Helper()
	return startAppWith(t, b.env(t), extraEnv...) // b.env may skip
}

// startAppWith starts an App on the given storage env, so that several Apps
// (a split deployment) can share one database and KV.
func startAppWith(t *testing.T, storage []string, extraEnv ...string) *testApp {
	t.Helper()
	sink := mailtest.NewSink(t)
	env := append([]string{
		"IMSRV_ROLES=all",
		"IMSRV_NODE_NAME=node-" + randHex(4),
		"IMSRV_GATE_LISTEN=127.0.0.1:0",
		"IMSRV_CHAT_LISTEN=127.0.0.1:0",
		"IMSRV_CHAT_RPCLISTEN=127.0.0.1:0",
		"IMSRV_VERIFY_SENDER=smtp",
		"IMSRV_VERIFY_SMTP_HOST=" + sink.Host(),
		"IMSRV_VERIFY_SMTP_PORT=" + strconv.Itoa(sink.Port()),
		"IMSRV_VERIFY_SMTP_TLS=none",
		"IMSRV_VERIFY_SMTP_FROM=noreply@imsrv.test",
		"IMSRV_VERIFY_PERADDR=100000",
		"IMSRV_LOG_LEVEL=warn",
	}, storage...)
	env = append(env, extraEnv...)
	cfg, err := app.Load(app.LoadOptions{Env: env})
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	logger, _ := ilog.New(io.Discard, "error", "text")
	if testing.Verbose() {
		logger, _ = ilog.New(os.Stderr, cfg.LogLevel, "text")
	}
	a := app.New(cfg, logger)
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.Open(ctx); err != nil {
		cancel()
		t.Fatalf("open app: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("app run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("app did not shut down within 15s")
			}
			if err := a.Close(); err != nil {
				t.Errorf("app close: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	if cfg.Has(app.RoleChat) {
		waitNodeRegistered(t, a, cfg.NodeName)
	}
	return &testApp{App: a, Sink: sink, URL: "http://" + a.GateAddr(), Heartbeat: cfg.Chat.Heartbeat, Stop: stop}
}

// waitNodeRegistered waits until the chat node's first registration is in,
// so that logins can be allocated to it.
func waitNodeRegistered(t testing.TB, a *app.App, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		nodes, err := a.Status().Nodes(context.Background())
		if err != nil {
			t.Fatalf("list nodes: %v", err)
		}
		for _, n := range nodes {
			if n.Name == name {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("chat node %s never registered", name)
}

// post sends body (a value to marshal, or raw []byte) and decodes the JSON answer.
func (ta *testApp) post(t *testing.T, path string, body any) map[string]any {
	t.Helper()
	resp, out := ta.postStatus(t, path, body)
	if resp != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %v", path, resp, out)
	}
	return out
}

func (ta *testApp) postStatus(t *testing.T, path string, body any) (int, map[string]any) {
	t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(ta.URL+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: HTTP %d, body not JSON: %v", path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

// code returns the "error" field as an int.
func code(m map[string]any) int {
	f, _ := m["error"].(float64)
	return int(f)
}

func wantCode(t *testing.T, m map[string]any, want int) {
	t.Helper()
	if got := code(m); got != want {
		t.Fatalf("error = %d, want %d (answer %v)", got, want, m)
	}
}

var codeRE = regexp.MustCompile(`code is (\d{4})`)

// requestCode asks for a code and reads it from the mail the sink received.
func (ta *testApp) requestCode(t *testing.T, email string) string {
	t.Helper()
	before := len(ta.mailsTo(email))
	wantCode(t, ta.post(t, "/get_varifycode", map[string]any{"email": email}), 0)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if msgs := ta.mailsTo(email); len(msgs) > before {
			m := codeRE.FindStringSubmatch(msgs[len(msgs)-1].Body)
			if m == nil {
				t.Fatalf("mail to %s has no code: %q", email, msgs[len(msgs)-1].Body)
			}
			return m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no mail to %s", email)
	return ""
}

func (ta *testApp) mailsTo(email string) []mailtest.Received {
	var out []mailtest.Received
	for _, m := range ta.Sink.Messages() {
		for _, to := range m.To {
			if to == email {
				out = append(out, m)
			}
		}
	}
	return out
}

// register creates a user through the whole code → register path.
func (ta *testApp) register(t *testing.T, name, email, passwd string) int {
	t.Helper()
	c := ta.requestCode(t, email)
	out := ta.post(t, "/user_register", map[string]any{
		"email": email, "user": name, "passwd": passwd, "confirm": passwd, "varifycode": c,
	})
	wantCode(t, out, 0)
	return int(out["uid"].(float64))
}
