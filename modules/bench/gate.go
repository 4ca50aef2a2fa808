package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/sync/errgroup"
)

// GateClient speaks to the gate's HTTP API: the admin API (provisioning and
// chat logins, with the admin bearer token) and /user_login.
type GateClient struct {
	base  string
	token string
	http  *http.Client
}

// NewGateClient returns a client for the gate at base ("http://host:port")
// using hc for the requests.
func NewGateClient(base, adminToken string, hc *http.Client) (*GateClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bench: gate URL %q: want http://host:port", base)
	}
	return &GateClient{base: strings.TrimRight(base, "/"), token: adminToken, http: hc}, nil
}

// URL returns the gate's base URL.
func (g *GateClient) URL() string { return g.base }

// APIError is an answer whose "error" field is not 0, or an HTTP status
// other than 200.
type APIError struct {
	Path    string
	Status  int // HTTP status
	Code    int // the "error" field
	Message string
}

func (e *APIError) Error() string {
	if e.Status != http.StatusOK {
		return fmt.Sprintf("bench: POST %s: HTTP %d: %s", e.Path, e.Status, e.Message)
	}
	return fmt.Sprintf("bench: POST %s: error %d: %s", e.Path, e.Code, e.Message)
}

// post sends req as JSON and decodes a 200 answer with "error":0 into rsp.
func (g *GateClient) post(ctx context.Context, path string, admin bool, req, rsp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("bench: encode %s request: %w", path, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench: POST %s: %w", path, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if admin {
		hreq.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("bench: POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("bench: POST %s: read answer: %w", path, err)
	}
	var status struct {
		Error   *int   `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &status); err != nil || status.Error == nil {
		return &APIError{Path: path, Status: resp.StatusCode, Message: fmt.Sprintf("answer is not an imsrv JSON answer: %.200q", raw)}
	}
	if resp.StatusCode != http.StatusOK || *status.Error != 0 {
		apiErr := &APIError{Path: path, Status: resp.StatusCode, Code: *status.Error, Message: status.Message}
		if resp.StatusCode == http.StatusNotFound && admin {
			apiErr.Message += " (is the admin API enabled? set IMSRV_ADMIN_TOKEN on the server)"
		}
		return apiErr
	}
	if err := json.Unmarshal(raw, rsp); err != nil {
		return fmt.Errorf("bench: POST %s: decode answer: %w", path, err)
	}
	return nil
}

// NewUser is a user to provision; a Passwd makes it able to log in through
// /user_login.
type NewUser struct {
	User   string `json:"user"`
	Email  string `json:"email"`
	Passwd string `json:"passwd,omitempty"`
}

// ProvisionedUser is the admin API's answer for one NewUser.
type ProvisionedUser struct {
	Error   int    `json:"error"`
	Message string `json:"message"`
	UID     int32  `json:"uid"`
	User    string `json:"user"`
	Email   string `json:"email"`
	Created bool   `json:"created"`
}

// CreateUsers provisions users through POST /admin/users, reusing accounts
// that exist with the same name and e-mail, in batches of batch users with
// up to parallel requests in flight. The answer is in the order of users.
// Any refused user is an error.
func (g *GateClient) CreateUsers(ctx context.Context, users []NewUser, batch, parallel int) ([]ProvisionedUser, error) {
	out := make([]ProvisionedUser, len(users))
	err := inBatches(ctx, len(users), batch, parallel, func(ctx context.Context, lo, hi int) error {
		var rsp struct {
			Users []ProvisionedUser `json:"users"`
		}
		req := map[string]any{"users": users[lo:hi], "reuse": true}
		if err := g.post(ctx, "/admin/users", true, req, &rsp); err != nil {
			return err
		}
		if len(rsp.Users) != hi-lo {
			return fmt.Errorf("bench: /admin/users answered %d results for %d users", len(rsp.Users), hi-lo)
		}
		for i, u := range rsp.Users {
			if u.Error != 0 {
				return fmt.Errorf("bench: provision %s: error %d: %s", users[lo+i].User, u.Error, u.Message)
			}
		}
		copy(out[lo:hi], rsp.Users)
		return nil
	})
	return out, err
}

// Login is where and how a uid logs in to chat: /user_login's answer, or the
// admin API's for a uid.
type Login struct {
	Error   int    `json:"error"`
	Message string `json:"message"`
	UID     int32  `json:"uid"`
	Token   string `json:"token"`
	Host    string `json:"host"`
	Port    string `json:"port"`
}

// Addr is the chat node's host:port.
func (l Login) Addr() string { return net.JoinHostPort(l.Host, l.Port) }

// AdminLogins issues a chat login (token and node) for each uid through
// POST /admin/login, in batches. Any refused uid is an error.
func (g *GateClient) AdminLogins(ctx context.Context, uids []int32, batch, parallel int) ([]Login, error) {
	out := make([]Login, len(uids))
	err := inBatches(ctx, len(uids), batch, parallel, func(ctx context.Context, lo, hi int) error {
		var rsp struct {
			Logins []Login `json:"logins"`
		}
		if err := g.post(ctx, "/admin/login", true, map[string]any{"uids": uids[lo:hi]}, &rsp); err != nil {
			return err
		}
		if len(rsp.Logins) != hi-lo {
			return fmt.Errorf("bench: /admin/login answered %d results for %d uids", len(rsp.Logins), hi-lo)
		}
		for i, l := range rsp.Logins {
			if l.Error != 0 {
				return fmt.Errorf("bench: chat login for uid %d: error %d: %s", uids[lo+i], l.Error, l.Message)
			}
		}
		copy(out[lo:hi], rsp.Logins)
		return nil
	})
	return out, err
}

// UserLogin is the password login of the llfc clients: POST /user_login.
func (g *GateClient) UserLogin(ctx context.Context, email, passwd string) (Login, error) {
	var l Login
	err := g.post(ctx, "/user_login", false, map[string]string{"email": email, "passwd": passwd}, &l)
	return l, err
}

// inBatches calls f for [lo, hi) slices of n items, batch at a time, with up
// to parallel calls running.
func inBatches(ctx context.Context, n, batch, parallel int, f func(ctx context.Context, lo, hi int) error) error {
	if batch < 1 {
		return errors.New("bench: batch size must be positive")
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		g.Go(func() error { return f(ctx, lo, hi) })
	}
	return g.Wait()
}
