package app_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
)

// testAdminToken is the admin token of the apps these tests start.
const testAdminToken = "e2e-admin-token-0123456789abcdef"

// adminPost posts body to the gate with the given bearer token ("" = no
// Authorization header) and returns the HTTP status and the JSON answer.
func (ta *testApp) adminPost(t *testing.T, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, ta.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
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

// TestAdminProvisionAndChatLogin provisions users through the admin API and
// logs one in to its chat node with the issued token: no mail, no password.
func TestAdminProvisionAndChatLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b, "IMSRV_ADMIN_TOKEN="+testAdminToken)
		status, out := ta.adminPost(t, "/admin/users", testAdminToken, map[string]any{"users": []map[string]string{
			{"user": "prov-a", "email": "prov-a@example.com"},
			{"user": "prov-b", "email": "prov-b@example.com"},
		}})
		if status != http.StatusOK || code(out) != 0 {
			t.Fatalf("/admin/users: HTTP %d %v", status, out)
		}
		users := out["users"].([]any)
		uid := users[0].(map[string]any)["uid"].(float64)

		status, out = ta.adminPost(t, "/admin/login", testAdminToken, map[string]any{"uids": []float64{uid}})
		if status != http.StatusOK || code(out) != 0 {
			t.Fatalf("/admin/login: HTTP %d %v", status, out)
		}
		l := out["logins"].([]any)[0].(map[string]any)
		if code(l) != 0 || l["token"] == "" {
			t.Fatalf("login = %v", l)
		}
		c, err := chatclient.Dial(ctxT(t), net.JoinHostPort(l["host"].(string), l["port"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rsp, err := c.Login(ctxT(t), int32(uid), l["token"].(string))
		if err != nil {
			t.Fatalf("chat login with the admin-issued token: %v", err)
		}
		if rsp.Name != "prov-a" || rsp.Email != "prov-a@example.com" {
			t.Fatalf("1006 = %+v", rsp)
		}

		// The provisioned account has no password: /user_login refuses it.
		wantCode(t, ta.post(t, "/user_login", map[string]any{"email": "prov-a@example.com", "passwd": "anything-at-all"}), 1009)

		// Without the token, or with another one: 401, nothing created.
		for _, token := range []string{"", "not-the-admin-token-0123456789"} {
			status, out := ta.adminPost(t, "/admin/users", token, map[string]any{"users": []map[string]string{
				{"user": "intruder", "email": "intruder@example.com"},
			}})
			if status != http.StatusUnauthorized || code(out) != 401 {
				t.Fatalf("token %q: HTTP %d %v, want 401", token, status, out)
			}
		}
		if _, err := ta.Accounts().ByName(ctxT(t), "intruder"); err == nil {
			t.Fatal("an unauthorised request created a user")
		}
	})
}

// TestAdminOffByDefault: without IMSRV_ADMIN_TOKEN the admin API does not
// exist, whatever the request carries.
func TestAdminOffByDefault(t *testing.T) {
	ta := startApp(t, backends()[0])
	for _, path := range []string{"/admin/users", "/admin/login"} {
		status, out := ta.adminPost(t, path, testAdminToken, map[string]any{"uids": []int{1}})
		if status != http.StatusNotFound || code(out) != 404 {
			t.Fatalf("%s with the admin API off: HTTP %d %v, want 404", path, status, out)
		}
	}
}

func TestAdminTokenConfig(t *testing.T) {
	for _, tc := range []struct {
		token string
		want  string // "" = accepted
	}{
		{"0123456789abcdef", ""},
		{strings.Repeat("x", 64), ""},
		{"tiny-tkn", "too short"},
		{"0123456789abcdef with space", "visible ASCII"},
		{"0123456789abcdef\x01", "visible ASCII"},
		{"0123456789abcdefé", "visible ASCII"},
	} {
		cfg, err := cfgLoadEnv(t, "IMSRV_ADMIN_TOKEN="+tc.token)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("token %q refused: %v", tc.token, err)
		case tc.want == "" && cfg.AdminToken != tc.token:
			t.Errorf("token %q loaded as %q", tc.token, cfg.AdminToken)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "config admin.token (IMSRV_ADMIN_TOKEN)") ||
			!strings.Contains(err.Error(), tc.want)):
			t.Errorf("token %q: error %v, want one naming admin.token and saying %q", tc.token, err, tc.want)
		case tc.want != "" && strings.Contains(err.Error(), tc.token):
			t.Errorf("the error echoes the token: %v", err)
		}
	}
}
