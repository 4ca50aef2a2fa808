package gate

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/modules/errcode"
	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/verify"
)

// The admin API (docs/ADMIN.md) provisions users and issues chat logins
// without mail or password hashing, for operators and load generators. It
// exists only when Config.AdminToken is set; every request must then carry
// "Authorization: Bearer <token>".
//
//	POST /admin/users  {"users":[{"user","email","passwd"?}...], "reuse"?}  create users
//	POST /admin/login  {"uids":[...]}                                     tokens + chat nodes

// AdminMaxBatch is the most users or uids one admin request may name; the
// gate's body limit (Config.MaxBody) applies too.
const AdminMaxBatch = 1000

type (
	adminUsersReq struct {
		Users []adminNewUser `json:"users"`
		// Reuse answers an existing account with the same user name and
		// e-mail as a success (created false) instead of 1005, so that a
		// provisioning run can be repeated.
		Reuse bool `json:"reuse"`
	}
	adminNewUser struct {
		User  string `json:"user"`
		Email string `json:"email"`
		// Passwd, when set, gives the account a password (hashed, so that
		// /user_login works); without it the account is provisioned
		// password-less and logs in only through /admin/login.
		Passwd string `json:"passwd"`
	}
	adminUser struct {
		Error   errcode.Code `json:"error"`
		Message string       `json:"message,omitempty"`
		UID     int32        `json:"uid,omitempty"`
		User    string       `json:"user"`
		Email   string       `json:"email"`
		Created bool         `json:"created"`
	}
	adminLoginReq struct {
		UIDs []int32 `json:"uids"`
	}
	adminLogin struct {
		Error   errcode.Code `json:"error"`
		Message string       `json:"message,omitempty"`
		UID     int32        `json:"uid"`
		Token   string       `json:"token,omitempty"`
		Host    string       `json:"host,omitempty"`
		Port    string       `json:"port,omitempty"`
		Node    string       `json:"node,omitempty"`
	}
)

// adminRoutes registers the admin API behind the bearer-token check. It is
// called only when an admin token is configured.
func (g *Gate) adminRoutes(r chi.Router) {
	r.Route("/admin", func(r chi.Router) {
		r.Use(g.adminAuth)
		r.Post("/users", g.adminUsers)
		r.Post("/login", g.adminLogin)
	})
}

// adminAuth refuses requests without the configured bearer token: HTTP 401
// with a JSON body. The comparison is of SHA-256 digests in constant time,
// so that neither the token's content nor its length leaks through timing.
func (g *Gate) adminAuth(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(g.cfg.AdminToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 || !ok {
			g.d.Logger.InfoContext(r.Context(), "gate: admin request refused", "path", r.URL.Path,
				"client", g.clientAddr(r), "credentials", ok)
			w.Header().Set("WWW-Authenticate", `Bearer realm="imsrv-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{
				"error": http.StatusUnauthorized, "message": "admin API: missing or wrong bearer token",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the credentials of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110).
func bearer(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// adminUsers creates the listed users, each on its own: one bad or taken
// entry does not stop the others. The answer lists a result per entry, in
// order, each with its own error code (0, 1005 taken, 1101 invalid).
func (g *Gate) adminUsers(w http.ResponseWriter, r *http.Request) {
	var req adminUsersReq
	if err := g.decode(w, r, &req); err != nil {
		failDecode(w, err)
		return
	}
	if len(req.Users) == 0 {
		fail(w, errcode.JSON)
		return
	}
	if len(req.Users) > AdminMaxBatch {
		failf(w, errcode.InvalidArgument, fmt.Sprintf("at most %d users per request", AdminMaxBatch))
		return
	}
	ctx := r.Context()
	out := make([]adminUser, 0, len(req.Users))
	var created, reused, refused int
	for _, nu := range req.Users {
		res, err := g.adminCreate(r, nu, req.Reuse)
		if err != nil {
			// Storage failed: what was created so far stays; a retry with
			// "reuse" picks up where this one stopped.
			g.internal(w, r, err)
			return
		}
		switch {
		case res.Error != errcode.OK:
			refused++
		case res.Created:
			created++
		default:
			reused++
		}
		out = append(out, res)
	}
	g.d.Logger.InfoContext(ctx, "admin: users provisioned", "created", created, "reused", reused,
		"refused", refused, "client", g.clientAddr(r))
	writeJSON(w, http.StatusOK, map[string]any{"error": errcode.OK, "users": out})
}

// adminCreate creates one user. Refusals are in the result; the error is
// for storage failures only.
func (g *Gate) adminCreate(r *http.Request, nu adminNewUser, reuse bool) (adminUser, error) {
	ctx := r.Context()
	res := adminUser{User: nu.User, Email: nu.Email}
	refuse := func(code errcode.Code, detail string) (adminUser, error) {
		res.Error, res.Message = code, code.Message()
		if detail != "" {
			res.Message += ": " + detail
		}
		return res, nil
	}
	if missing(nu.User, nu.Email) {
		return refuse(errcode.JSON, "user and email are required")
	}
	if _, err := verify.NormalizeEmail(nu.Email); err != nil {
		return refuse(errcode.InvalidArgument, "email is not a valid address")
	}
	var u account.User
	var err error
	if nu.Passwd != "" {
		u, err = g.d.Accounts.Create(ctx, account.NewUser{Name: nu.User, Email: nu.Email, Password: nu.Passwd})
	} else {
		u, err = g.d.Accounts.Provision(ctx, nu.User, nu.Email)
	}
	switch {
	case err == nil:
		res.UID, res.Email, res.Created = u.UID, u.Email, true
		return res, nil
	case errors.Is(err, account.ErrInvalid):
		return refuse(errcode.InvalidArgument, invalidDetail(err))
	case !errors.Is(err, account.ErrTaken):
		return res, err
	case !reuse:
		return refuse(errcode.UserExist, "")
	}
	existing, err := g.d.Accounts.ByName(ctx, nu.User)
	if errors.Is(err, account.ErrNotFound) || (err == nil && account.EmailKey(existing.Email) != account.EmailKey(nu.Email)) {
		return refuse(errcode.UserExist, "taken by another account")
	}
	if err != nil {
		return res, err
	}
	res.UID, res.Email = existing.UID, existing.Email
	return res, nil
}

// adminLogin allocates a chat node and issues a fresh login token for each
// uid, as /user_login does after a password check (the previous token of
// that uid stops working). Per-uid errors: 1011 no such user, 1002 no chat
// node available.
func (g *Gate) adminLogin(w http.ResponseWriter, r *http.Request) {
	var req adminLoginReq
	if err := g.decode(w, r, &req); err != nil {
		failDecode(w, err)
		return
	}
	if len(req.UIDs) == 0 {
		fail(w, errcode.JSON)
		return
	}
	if len(req.UIDs) > AdminMaxBatch {
		failf(w, errcode.InvalidArgument, fmt.Sprintf("at most %d uids per request", AdminMaxBatch))
		return
	}
	ctx := r.Context()
	out := make([]adminLogin, 0, len(req.UIDs))
	for _, uid := range req.UIDs {
		res := adminLogin{UID: uid}
		_, err := g.d.Accounts.ByUID(ctx, uid)
		if errors.Is(err, account.ErrNotFound) {
			res.Error, res.Message = errcode.UIDInvalid, errcode.UIDInvalid.Message()
			out = append(out, res)
			continue
		}
		if err != nil {
			g.internal(w, r, err)
			return
		}
		alloc, err := g.d.Status.Allocate(ctx, uid)
		if err != nil {
			g.d.Logger.WarnContext(ctx, "gate: admin chat node allocation failed", "uid", uid, "err", err)
			res.Error, res.Message = errcode.RPCFailed, errcode.RPCFailed.Message()
			if errors.Is(err, status.ErrNoNode) {
				res.Message += ": no chat node is available"
			}
			out = append(out, res)
			continue
		}
		res.Token, res.Host, res.Port, res.Node = alloc.Token, alloc.Host, alloc.Port, alloc.Node
		out = append(out, res)
	}
	g.d.Logger.InfoContext(ctx, "admin: logins issued", "uids", len(req.UIDs), "client", g.clientAddr(r))
	writeJSON(w, http.StatusOK, map[string]any{"error": errcode.OK, "logins": out})
}
