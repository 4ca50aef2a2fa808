package gate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imsrv/imsrv/migrations"
	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/modules/gate"
	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/platform/kv"
	"github.com/imsrv/imsrv/platform/sqldb"
	"github.com/imsrv/imsrv/platform/sqldb/sqldbtest"
)

const adminToken = "test-admin-token-0123456789"

// adminGate is a gate on a fresh SQLite database and an in-memory status
// module with one registered chat node (unless noNode), served by httptest.
type adminGate struct {
	url      string
	accounts *account.Store
	status   *status.Module
}

func newAdminGate(t *testing.T, token string, noNode bool) *adminGate {
	t.Helper()
	ctx := context.Background()
	db := sqldbtest.SQLite(t)
	if _, err := sqldb.Migrate(ctx, db, migrations.FS); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	store := kv.NewMemory()
	t.Cleanup(func() { store.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := status.New(status.Config{}, store, logger)
	if !noNode {
		if err := st.RegisterNode(ctx, status.Node{Name: "node-a", Addr: "127.0.0.1:8090"}); err != nil {
			t.Fatalf("register node: %v", err)
		}
	}
	accounts := account.NewStore(db)
	g := gate.New(gate.Config{AdminToken: token}, gate.Deps{Status: st, Accounts: accounts, Logger: logger})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return &adminGate{url: srv.URL, accounts: accounts, status: st}
}

// do sends body as JSON with the given Authorization header ("" = none) and
// decodes the JSON answer.
func (ag *adminGate) do(t *testing.T, method, path, auth string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, ag.url+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: HTTP %d, body is not JSON: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, out
}

// admin posts with the right token and requires HTTP 200 and error 0.
func (ag *adminGate) admin(t *testing.T, path string, body any) map[string]any {
	t.Helper()
	code, _, out := ag.do(t, http.MethodPost, path, "Bearer "+adminToken, body)
	if code != http.StatusOK || out["error"] != float64(0) {
		t.Fatalf("POST %s: HTTP %d %v, want 200 with error 0", path, code, out)
	}
	return out
}

func items(t *testing.T, out map[string]any, key string) []map[string]any {
	t.Helper()
	list, ok := out[key].([]any)
	if !ok {
		t.Fatalf("answer has no %q list: %v", key, out)
	}
	res := make([]map[string]any, len(list))
	for i, v := range list {
		res[i] = v.(map[string]any)
	}
	return res
}

func TestAdminDisabledIs404(t *testing.T) {
	ag := newAdminGate(t, "", false)
	for _, path := range []string{"/admin/users", "/admin/login"} {
		code, _, out := ag.do(t, http.MethodPost, path, "Bearer "+adminToken, map[string]any{"uids": []int{1}})
		if code != http.StatusNotFound || out["error"] != float64(404) {
			t.Errorf("POST %s with the admin API off: HTTP %d %v, want 404 with a JSON body", path, code, out)
		}
	}
}

func TestAdminRefusedWithoutToken(t *testing.T) {
	ag := newAdminGate(t, adminToken, false)
	for _, tc := range []struct{ method, path, auth string }{
		{http.MethodPost, "/admin/users", ""},
		{http.MethodPost, "/admin/users", "Bearer wrong-token-0123456789"},
		{http.MethodPost, "/admin/users", "Bearer " + adminToken + "x"},
		{http.MethodPost, "/admin/users", "Bearer " + adminToken[:len(adminToken)-1]},
		{http.MethodPost, "/admin/users", "Basic " + adminToken},
		{http.MethodPost, "/admin/users", adminToken},
		{http.MethodPost, "/admin/users", "Bearer "},
		{http.MethodPost, "/admin/login", ""},
		{http.MethodGet, "/admin/users", ""},
		{http.MethodPost, "/admin/nothing", ""},
	} {
		t.Run(fmt.Sprintf("%s %s %q", tc.method, tc.path, tc.auth), func(t *testing.T) {
			body := map[string]any{"users": []map[string]string{{"user": "mallory", "email": "m@example.com"}}, "uids": []int{1}}
			code, h, out := ag.do(t, tc.method, tc.path, tc.auth, body)
			if code != http.StatusUnauthorized || out["error"] != float64(401) {
				t.Fatalf("HTTP %d %v, want 401 with a JSON body", code, out)
			}
			if !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", h.Get("WWW-Authenticate"))
			}
		})
	}
	if _, err := ag.accounts.ByName(t.Context(), "mallory"); err == nil {
		t.Fatal("a refused request created a user")
	}
	// The scheme is case-insensitive.
	code, _, out := ag.do(t, http.MethodPost, "/admin/users", "bearer "+adminToken,
		map[string]any{"users": []map[string]string{{"user": "casey", "email": "casey@example.com"}}})
	if code != http.StatusOK || out["error"] != float64(0) {
		t.Fatalf("lower-case scheme: HTTP %d %v, want 200", code, out)
	}
}

func TestAdminCreateUsers(t *testing.T) {
	ag := newAdminGate(t, adminToken, false)
	ctx := t.Context()
	out := ag.admin(t, "/admin/users", map[string]any{"users": []map[string]string{
		{"user": "bench-1", "email": "bench-1@example.com"},
		{"user": "bench-2", "email": "not an e-mail"},
		{"user": "bench-1", "email": "other@example.com"}, // name taken by the first entry
		{"user": "12345", "email": "digits@example.com"},  // all-digit names are invalid
		{"user": "", "email": "empty@example.com"},
		{"user": "withpw", "email": "withpw@example.com", "passwd": "secret-1"},
	}})
	got := items(t, out, "users")
	want := []float64{0, 1101, 1005, 1101, 1001, 0}
	if len(got) != len(want) {
		t.Fatalf("%d results for 6 entries: %v", len(got), got)
	}
	for i, w := range want {
		if got[i]["error"] != w {
			t.Errorf("entry %d: %v, want error %v", i, got[i], w)
		}
	}
	if got[0]["created"] != true || got[0]["uid"] == nil || got[0]["user"] != "bench-1" {
		t.Fatalf("entry 0 = %v, want created with a uid", got[0])
	}
	uid := int32(got[0]["uid"].(float64))
	u, err := ag.accounts.ByUID(ctx, uid)
	if err != nil || u.Name != "bench-1" || u.Email != "bench-1@example.com" {
		t.Fatalf("ByUID(%d) = %+v, %v", uid, u, err)
	}
	// Provisioned without a password: no password logs in.
	if _, err := ag.accounts.Authenticate(ctx, "bench-1@example.com", ""); err == nil {
		t.Fatal("a password-less account authenticated")
	}
	// With a password it is a normal account.
	if _, err := ag.accounts.Authenticate(ctx, "withpw@example.com", "secret-1"); err != nil {
		t.Fatalf("account created with a password does not authenticate: %v", err)
	}

	// Again: taken, unless reuse is asked for, and reuse needs the same e-mail.
	again := items(t, ag.admin(t, "/admin/users", map[string]any{"users": []map[string]string{
		{"user": "bench-1", "email": "BENCH-1@example.com"},
	}}), "users")
	if again[0]["error"] != float64(1005) {
		t.Fatalf("existing user without reuse: %v, want 1005", again[0])
	}
	reused := items(t, ag.admin(t, "/admin/users", map[string]any{"reuse": true, "users": []map[string]string{
		{"user": "bench-1", "email": "BENCH-1@example.com"},
		{"user": "bench-1", "email": "someone-else@example.com"},
		{"user": "bench-3", "email": "bench-3@example.com"},
	}}), "users")
	if reused[0]["error"] != float64(0) || reused[0]["created"] != false || int32(reused[0]["uid"].(float64)) != uid {
		t.Fatalf("reuse of the same user: %v, want error 0, created false, uid %d", reused[0], uid)
	}
	if reused[1]["error"] != float64(1005) {
		t.Fatalf("reuse of a name with another e-mail: %v, want 1005", reused[1])
	}
	if reused[2]["error"] != float64(0) || reused[2]["created"] != true {
		t.Fatalf("new user in a reuse request: %v, want created", reused[2])
	}
}

func TestAdminBadRequests(t *testing.T) {
	ag := newAdminGate(t, adminToken, false)
	auth := "Bearer " + adminToken
	tooMany := make([]int32, gate.AdminMaxBatch+1)
	for i := range tooMany {
		tooMany[i] = int32(i + 1)
	}
	for _, tc := range []struct {
		path string
		body any
		want float64
	}{
		{"/admin/users", map[string]any{}, 1001},
		{"/admin/users", map[string]any{"users": "alice"}, 1001},
		{"/admin/login", map[string]any{"uids": []int{}}, 1001},
		{"/admin/login", map[string]any{"uids": []string{"1"}}, 1001},
		{"/admin/login", map[string]any{"uids": tooMany}, 1101},
	} {
		code, _, out := ag.do(t, http.MethodPost, tc.path, auth, tc.body)
		if code != http.StatusOK || out["error"] != tc.want {
			t.Errorf("POST %s %v: HTTP %d %v, want 200 with error %v", tc.path, tc.body, code, out, tc.want)
		}
	}
}

func TestAdminLogin(t *testing.T) {
	ag := newAdminGate(t, adminToken, false)
	ctx := t.Context()
	users := items(t, ag.admin(t, "/admin/users", map[string]any{"users": []map[string]string{
		{"user": "ann", "email": "ann@example.com"},
		{"user": "ben", "email": "ben@example.com"},
	}}), "users")
	ann, ben := int32(users[0]["uid"].(float64)), int32(users[1]["uid"].(float64))

	logins := items(t, ag.admin(t, "/admin/login", map[string]any{"uids": []int32{ann, ben, 999999}}), "logins")
	if len(logins) != 3 {
		t.Fatalf("%d logins for 3 uids: %v", len(logins), logins)
	}
	for i, uid := range []int32{ann, ben} {
		l := logins[i]
		if l["error"] != float64(0) || int32(l["uid"].(float64)) != uid || l["host"] != "127.0.0.1" ||
			l["port"] != "8090" || l["node"] != "node-a" {
			t.Fatalf("login %d = %v, want uid %d on node-a 127.0.0.1:8090", i, l, uid)
		}
		if err := ag.status.CheckToken(ctx, uid, l["token"].(string)); err != nil {
			t.Fatalf("issued token of %d does not check: %v", uid, err)
		}
	}
	if logins[2]["error"] != float64(1011) {
		t.Fatalf("unknown uid: %v, want 1011", logins[2])
	}
	// A new login replaces the previous token, as /user_login does.
	again := items(t, ag.admin(t, "/admin/login", map[string]any{"uids": []int32{ann}}), "logins")
	if err := ag.status.CheckToken(ctx, ann, logins[0]["token"].(string)); err == nil {
		t.Fatal("the previous token still works after a new login")
	}
	if err := ag.status.CheckToken(ctx, ann, again[0]["token"].(string)); err != nil {
		t.Fatalf("new token: %v", err)
	}
}

func TestAdminLoginWithoutChatNode(t *testing.T) {
	ag := newAdminGate(t, adminToken, true)
	users := items(t, ag.admin(t, "/admin/users", map[string]any{"users": []map[string]string{
		{"user": "ann", "email": "ann@example.com"},
	}}), "users")
	logins := items(t, ag.admin(t, "/admin/login", map[string]any{"uids": []any{users[0]["uid"]}}), "logins")
	if logins[0]["error"] != float64(1002) || logins[0]["token"] != nil {
		t.Fatalf("login without a chat node: %v, want 1002 and no token", logins[0])
	}
}
