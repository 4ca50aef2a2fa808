package app_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGateFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		email := "Alice." + randHex(3) + "@Example.com"

		c := ta.requestCode(t, email)
		reg := ta.post(t, "/user_register", map[string]any{
			"email": email, "user": "alice", "passwd": "pass word1", "confirm": "pass word1", "varifycode": c,
		})
		wantCode(t, reg, 0)
		uid, _ := reg["uid"].(float64)
		if uid <= 0 || reg["user"] != "alice" || reg["email"] != email {
			t.Fatalf("register answer %v", reg)
		}
		noSecrets(t, reg)

		// Login with the e-mail in another case.
		login := ta.post(t, "/user_login", map[string]any{"email": strings.ToUpper(email), "passwd": "pass word1"})
		wantCode(t, login, 0)
		noSecrets(t, login)
		if login["uid"].(float64) != uid || login["email"] != email {
			t.Fatalf("login answer %v", login)
		}
		if port, ok := login["port"].(string); !ok || port == "" {
			t.Fatalf("port must be a non-empty string: %#v", login["port"])
		}
		if tok, _ := login["token"].(string); len(tok) < 32 {
			t.Fatalf("token too short: %q", tok)
		}
		if login["host"] == "" {
			t.Fatalf("no host: %v", login)
		}
		// A new login replaces the token.
		login2 := ta.post(t, "/user_login", map[string]any{"email": email, "passwd": "pass word1"})
		if login2["token"] == login["token"] {
			t.Fatalf("token not replaced on relogin")
		}

		// Reset the password, then only the new one works.
		c = ta.requestCode(t, email)
		reset := ta.post(t, "/reset_pwd", map[string]any{"email": email, "user": "alice", "passwd": "n3w-secret", "varifycode": c})
		wantCode(t, reset, 0)
		noSecrets(t, reset)
		wantCode(t, ta.post(t, "/user_login", map[string]any{"email": email, "passwd": "pass word1"}), 1009)
		wantCode(t, ta.post(t, "/user_login", map[string]any{"email": email, "passwd": "n3w-secret"}), 0)
		// The reset code is used up.
		wantCode(t, ta.post(t, "/reset_pwd", map[string]any{"email": email, "user": "alice", "passwd": "other-secret", "varifycode": c}), 1003)
	})
}

func noSecrets(t *testing.T, m map[string]any) {
	t.Helper()
	for _, k := range []string{"passwd", "pwd", "confirm", "varifycode", "code"} {
		if _, ok := m[k]; ok {
			t.Fatalf("answer carries secret field %q: %v", k, m)
		}
	}
}

func TestGateErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		email := "bob" + randHex(3) + "@example.com"
		ta.register(t, "bob", email, "secret-1")

		t.Run("1001 malformed", func(t *testing.T) {
			for _, path := range []string{"/get_varifycode", "/user_register", "/reset_pwd", "/user_login"} {
				for _, body := range [][]byte{
					[]byte("not json"), []byte(`{"email":123}`), []byte(`{}`), []byte(`null`), []byte(`[1,2]`),
					[]byte(`{"email":"a@b.c"} trailing`), []byte(``),
				} {
					wantCode(t, ta.post(t, path, body), 1001)
				}
			}
			// Missing required fields, one at a time.
			full := map[string]any{"email": "x" + randHex(3) + "@example.com", "user": "x", "passwd": "secret-1", "confirm": "secret-1", "varifycode": "1234"}
			for _, f := range []string{"email", "user", "passwd", "confirm", "varifycode"} {
				m := clone(full)
				delete(m, f)
				wantCode(t, ta.post(t, "/user_register", m), 1001)
			}
			wantCode(t, ta.post(t, "/user_login", map[string]any{"email": email}), 1001)
			wantCode(t, ta.post(t, "/reset_pwd", map[string]any{"email": email, "user": "bob", "passwd": "secret-2"}), 1001)
		})

		t.Run("1MB body", func(t *testing.T) {
			big := []byte(`{"email":"` + strings.Repeat("a", 1<<20) + `@example.com"}`)
			status, out := ta.postStatus(t, "/get_varifycode", big)
			if status != http.StatusRequestEntityTooLarge || code(out) != 1001 {
				t.Fatalf("1MB body: HTTP %d %v", status, out)
			}
			if n := ta.Sink.Count(); n != 1 {
				t.Fatalf("mails sent = %d, want only the registration's 1", n)
			}
		})

		t.Run("1003 no code", func(t *testing.T) {
			wantCode(t, ta.post(t, "/user_register", regBody("nocode"+randHex(3)+"@example.com", "carol", "1234")), 1003)
		})

		t.Run("1003 used code", func(t *testing.T) {
			e := "dave" + randHex(3) + "@example.com"
			c := ta.requestCode(t, e)
			wantCode(t, ta.post(t, "/user_register", regBody(e, "dave", c)), 0)
			wantCode(t, ta.post(t, "/user_register", regBody("other"+e, "dave2", c)), 1003)
			wantCode(t, ta.post(t, "/user_register", regBody(e, "dave3", c)), 1003)
		})

		t.Run("1004 wrong code then invalidated after 5 attempts", func(t *testing.T) {
			e := "erin" + randHex(3) + "@example.com"
			c := ta.requestCode(t, e)
			wrong := fmt.Sprintf("%04d", (atoi(c)+1)%10000)
			for i := 0; i < 4; i++ {
				wantCode(t, ta.post(t, "/user_register", regBody(e, "erin", wrong)), 1004)
			}
			wantCode(t, ta.post(t, "/user_register", regBody(e, "erin", c)), 0) // 4 wrong: still valid
			e2 := "fay" + randHex(3) + "@example.com"
			c2 := ta.requestCode(t, e2)
			wrong2 := fmt.Sprintf("%04d", (atoi(c2)+1)%10000)
			for i := 0; i < 5; i++ {
				wantCode(t, ta.post(t, "/user_register", regBody(e2, "fay", wrong2)), 1004)
			}
			wantCode(t, ta.post(t, "/user_register", regBody(e2, "fay", c2)), 1003) // invalidated
		})

		t.Run("resend keeps the live code", func(t *testing.T) {
			e := "gus" + randHex(3) + "@example.com"
			c1 := ta.requestCode(t, e)
			c2 := ta.requestCode(t, e)
			if c1 != c2 {
				t.Fatalf("resend changed the code: %s then %s", c1, c2)
			}
		})

		t.Run("1005 taken", func(t *testing.T) {
			e := "hal" + randHex(3) + "@example.com"
			c := ta.requestCode(t, e)
			wantCode(t, ta.post(t, "/user_register", regBody(e, "bob", c)), 1005) // name taken
			// The code survives a refused registration.
			wantCode(t, ta.post(t, "/user_register", regBody(e, "hal", c)), 0)
			// Same e-mail in another case.
			up := strings.ToUpper(e)
			c = ta.requestCode(t, up)
			wantCode(t, ta.post(t, "/user_register", regBody(up, "hal2", c)), 1005)
		})

		t.Run("1006 confirm differs", func(t *testing.T) {
			m := regBody("ivy"+randHex(3)+"@example.com", "ivy", "1234")
			m["confirm"] = "different"
			wantCode(t, ta.post(t, "/user_register", m), 1006)
		})

		t.Run("1007 user and email do not match", func(t *testing.T) {
			c := ta.requestCode(t, email)
			wantCode(t, ta.post(t, "/reset_pwd", map[string]any{"email": email, "user": "notbob", "passwd": "secret-2", "varifycode": c}), 1007)
			// Nothing changed: the old password still works.
			wantCode(t, ta.post(t, "/user_login", map[string]any{"email": email, "passwd": "secret-1"}), 0)
		})

		t.Run("1009 wrong credentials", func(t *testing.T) {
			wantCode(t, ta.post(t, "/user_login", map[string]any{"email": email, "passwd": "wrong-pass"}), 1009)
			wantCode(t, ta.post(t, "/user_login", map[string]any{"email": "nobody@example.com", "passwd": "secret-1"}), 1009)
		})

		t.Run("1101 invalid arguments", func(t *testing.T) {
			wantCode(t, ta.post(t, "/get_varifycode", map[string]any{"email": "not-an-email"}), 1101)
			wantCode(t, ta.post(t, "/get_varifycode", map[string]any{"email": "Name <a@b.c>"}), 1101)
			e := "jo" + randHex(3) + "@example.com"
			short := regBody(e, "jo", "1234")
			short["passwd"], short["confirm"] = "12345", "12345"
			wantCode(t, ta.post(t, "/user_register", short), 1101)
			wantCode(t, ta.post(t, "/user_register", regBody(e, "123456", "1234")), 1101)       // digits-only name
			wantCode(t, ta.post(t, "/user_register", regBody(e, "a\nb", "1234")), 1101)         // control char
			wantCode(t, ta.post(t, "/user_register", regBody("bad-email", "jo", "1234")), 1101) // bad e-mail
		})

		t.Run("http surface", func(t *testing.T) {
			resp, err := http.Get(ta.URL + "/no/such/path")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("unknown path: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			req, _ := http.NewRequest(http.MethodOptions, ta.URL+"/user_login", nil)
			req.Header.Set("Origin", "http://localhost:5173")
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
				t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
			}
			// Query strings on POST paths are ignored; Content-Type is not required.
			resp, err = http.Post(ta.URL+"/user_login?email=x", "text/plain", strings.NewReader(`{"email":"`+email+`","passwd":"secret-1"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
				resp, err := http.Get(ta.URL + p)
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				buf.ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("%s: %d %s", p, resp.StatusCode, buf.String())
				}
				if p == "/metrics" && !strings.Contains(buf.String(), `imsrv_http_requests_total{method="POST",route="/user_login",status="200"}`) {
					t.Fatalf("metrics lack the login route:\n%s", buf.String())
				}
			}
		})
	})
}

func TestGateSendCaps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b, "IMSRV_VERIFY_PEREMAIL=2", "IMSRV_VERIFY_PERADDR=3")
		e := "cap" + randHex(3) + "@example.com"
		ta.requestCode(t, e)
		ta.requestCode(t, e)
		sent := ta.Sink.Count()
		wantCode(t, ta.post(t, "/get_varifycode", map[string]any{"email": e}), 1100)
		// Per client address: a third e-mail from the same address is the 4th send.
		ta.requestCode(t, "other"+e)
		sent++
		wantCode(t, ta.post(t, "/get_varifycode", map[string]any{"email": "third" + e}), 1100)
		time.Sleep(100 * time.Millisecond)
		if n := ta.Sink.Count(); n != sent {
			t.Fatalf("capped requests sent mail: %d mails, want %d", n, sent)
		}
	})
}

func TestGateExpiredCode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b, "IMSRV_VERIFY_TTL=1s")
		e := "exp" + randHex(3) + "@example.com"
		c := ta.requestCode(t, e)
		time.Sleep(1300 * time.Millisecond)
		wantCode(t, ta.post(t, "/user_register", regBody(e, "expired", c)), 1003)
	})
}

func TestGateUnavailable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		// No chat role: nothing to allocate, so login answers 1002.
		ta := startApp(t, b, "IMSRV_ROLES=gate,verify,status")
		e := "una" + randHex(3) + "@example.com"
		ta.register(t, "una", e, "secret-1")
		wantCode(t, ta.post(t, "/user_login", map[string]any{"email": e, "passwd": "secret-1"}), 1002)

		// A dead mail relay: 1002 within the send timeout.
		tb := startApp(t, b, "IMSRV_VERIFY_SMTP_PORT=1", "IMSRV_VERIFY_SENDTIMEOUT=2s")
		wantCode(t, tb.post(t, "/get_varifycode", map[string]any{"email": e}), 1002)
	})
}

func TestGateConcurrentRegistrations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ta := startApp(t, b)
		const users, workers = 200, 20
		prefix := randHex(3)
		codes := make([]string, users)
		for i := range codes {
			codes[i] = ta.requestCode(t, fmt.Sprintf("u%d-%s@example.com", i, prefix))
		}
		var mu sync.Mutex
		uids := map[int]bool{}
		var wg sync.WaitGroup
		errs := make(chan string, users)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < users; i += workers {
					e := fmt.Sprintf("u%d-%s@example.com", i, prefix)
					_, out := ta.postStatus(t, "/user_register", regBody(e, fmt.Sprintf("u%d-%s", i, prefix), codes[i]))
					if code(out) != 0 {
						errs <- fmt.Sprintf("user %d: %v", i, out)
						continue
					}
					mu.Lock()
					uids[int(out["uid"].(float64))] = true
					mu.Unlock()
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
		if len(uids) != users {
			t.Fatalf("%d distinct uids, want %d", len(uids), users)
		}
		for uid := range uids {
			if uid <= 0 {
				t.Fatalf("uid %d not positive", uid)
			}
		}
	})
}

func regBody(email, user, c string) map[string]any {
	return map[string]any{"email": email, "user": user, "passwd": "secret-1", "confirm": "secret-1", "varifycode": c}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func atoi(s string) int {
	n := 0
	fmt.Sscanf(s, "%d", &n)
	return n
}
