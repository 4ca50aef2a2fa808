package gate

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/modules/errcode"
	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/verify"
)

// Request bodies, with the llfc field names. Strings only: a number where a
// string belongs is a 1001.
type (
	varifyCodeReq struct {
		Email string `json:"email"`
	}
	registerReq struct {
		Email      string `json:"email"`
		User       string `json:"user"`
		Passwd     string `json:"passwd"`
		Confirm    string `json:"confirm"`
		Icon       string `json:"icon"`
		VarifyCode string `json:"varifycode"`
	}
	resetReq struct {
		Email      string `json:"email"`
		User       string `json:"user"`
		Passwd     string `json:"passwd"`
		VarifyCode string `json:"varifycode"`
	}
	loginReq struct {
		Email  string `json:"email"`
		Passwd string `json:"passwd"`
	}
)

func missing(fields ...string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) == "" {
			return true
		}
	}
	return false
}

func (g *Gate) getVarifyCode(w http.ResponseWriter, r *http.Request) {
	var req varifyCodeReq
	if err := g.decode(w, r, &req); err != nil {
		failDecode(w, err)
		return
	}
	if missing(req.Email) {
		fail(w, errcode.JSON)
		return
	}
	err := g.d.Verify.SendCode(r.Context(), verify.SendRequest{Email: req.Email, ClientAddr: g.clientAddr(r)})
	if err != nil {
		g.failVerify(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"error": errcode.OK, "email": req.Email})
}

func (g *Gate) userRegister(w http.ResponseWriter, r *http.Request) {
	var req registerReq
	if err := g.decode(w, r, &req); err != nil {
		failDecode(w, err)
		return
	}
	if missing(req.Email, req.User, req.Passwd, req.Confirm, req.VarifyCode) {
		fail(w, errcode.JSON)
		return
	}
	if req.Passwd != req.Confirm {
		fail(w, errcode.PasswdErr)
		return
	}
	// Validate everything before touching the code, so bad input costs no attempt.
	if _, err := verify.NormalizeEmail(req.Email); err != nil {
		failf(w, errcode.InvalidArgument, "email is not a valid address")
		return
	}
	if err := account.ValidateName(req.User); err != nil {
		failInvalid(w, err)
		return
	}
	if err := account.ValidatePassword(req.Passwd); err != nil {
		failInvalid(w, err)
		return
	}
	ctx := r.Context()
	if err := g.d.Verify.CheckCode(ctx, req.Email, req.VarifyCode); err != nil {
		g.failVerify(w, r, err)
		return
	}
	// Refuse a taken name or e-mail before using the code up, so the user can
	// fix the name and retry with the same code.
	taken, err := g.d.Accounts.Taken(ctx, req.User, req.Email)
	if err != nil {
		g.internal(w, r, err)
		return
	}
	if taken {
		fail(w, errcode.UserExist)
		return
	}
	if err := g.d.Verify.ConsumeCode(ctx, req.Email, req.VarifyCode); err != nil {
		g.failVerify(w, r, err)
		return
	}
	u, err := g.d.Accounts.Create(ctx, account.NewUser{Name: req.User, Email: req.Email, Password: req.Passwd, Icon: req.Icon})
	switch {
	case errors.Is(err, account.ErrTaken):
		fail(w, errcode.UserExist)
		return
	case errors.Is(err, account.ErrInvalid):
		failInvalid(w, err)
		return
	case err != nil:
		g.internal(w, r, err)
		return
	}
	g.d.Logger.InfoContext(ctx, "user registered", "uid", u.UID, "name", u.Name)
	writeJSON(w, http.StatusOK, map[string]any{"error": errcode.OK, "uid": u.UID, "user": u.Name, "email": u.Email})
}

func (g *Gate) resetPwd(w http.ResponseWriter, r *http.Request) {
	var req resetReq
	if err := g.decode(w, r, &req); err != nil {
		failDecode(w, err)
		return
	}
	if missing(req.Email, req.User, req.Passwd, req.VarifyCode) {
		fail(w, errcode.JSON)
		return
	}
	if err := account.ValidatePassword(req.Passwd); err != nil {
		failInvalid(w, err)
		return
	}
	ctx := r.Context()
	if err := g.d.Verify.CheckCode(ctx, req.Email, req.VarifyCode); err != nil {
		g.failVerify(w, r, err)
		return
	}
	uid, err := g.d.Accounts.Match(ctx, req.Email, req.User)
	if errors.Is(err, account.ErrMismatch) {
		fail(w, errcode.EmailNotMatch)
		return
	}
	if err != nil {
		g.internal(w, r, err)
		return
	}
	if err := g.d.Verify.ConsumeCode(ctx, req.Email, req.VarifyCode); err != nil {
		g.failVerify(w, r, err)
		return
	}
	if err := g.d.Accounts.SetPassword(ctx, uid, req.Passwd); err != nil {
		g.d.Logger.ErrorContext(ctx, "gate: password update failed", "uid", uid, "err", err)
		fail(w, errcode.PasswdUpFailed)
		return
	}
	g.d.Logger.InfoContext(ctx, "password reset", "uid", uid)
	writeJSON(w, http.StatusOK, map[string]any{"error": errcode.OK, "email": req.Email, "user": req.User})
}

func (g *Gate) userLogin(w http.ResponseWriter, r *http.Request) {
	var req loginReq
	if err := g.decode(w, r, &req); err != nil {
		failDecode(w, err)
		return
	}
	if missing(req.Email, req.Passwd) {
		fail(w, errcode.JSON)
		return
	}
	ctx := r.Context()
	u, err := g.d.Accounts.Authenticate(ctx, req.Email, req.Passwd)
	if errors.Is(err, account.ErrBadCredentials) {
		fail(w, errcode.PasswdInvalid)
		return
	}
	if err != nil {
		g.internal(w, r, err)
		return
	}
	alloc, err := g.d.Status.Allocate(ctx, u.UID)
	if err != nil {
		g.d.Logger.WarnContext(ctx, "gate: chat node allocation failed", "uid", u.UID, "err", err)
		if errors.Is(err, status.ErrNoNode) {
			failf(w, errcode.RPCFailed, "no chat node is available")
			return
		}
		fail(w, errcode.RPCFailed)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"error": errcode.OK, "email": u.Email, "uid": u.UID,
		"token": alloc.Token, "host": alloc.Host, "port": alloc.Port,
	})
}

// failVerify maps verify's sentinel errors to llfc codes. Anything else means
// the verify module (or its mail relay) is unavailable: 1002.
func (g *Gate) failVerify(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, verify.ErrNoCode):
		fail(w, errcode.VarifyExpired)
	case errors.Is(err, verify.ErrWrongCode):
		fail(w, errcode.VarifyCodeErr)
	case errors.Is(err, verify.ErrRateLimited):
		fail(w, errcode.RateLimited)
	case errors.Is(err, verify.ErrInvalidEmail):
		failf(w, errcode.InvalidArgument, "email is not a valid address")
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads the answer.
	default:
		g.d.Logger.ErrorContext(r.Context(), "gate: verify failed", "path", r.URL.Path, "err", err)
		fail(w, errcode.RPCFailed)
	}
}

// failInvalid answers 1101 with what account validation said is wrong.
func failInvalid(w http.ResponseWriter, err error) {
	failf(w, errcode.InvalidArgument, invalidDetail(err))
}

// invalidDetail is an account validation error without its sentinel's text.
func invalidDetail(err error) string {
	return strings.TrimPrefix(err.Error(), account.ErrInvalid.Error()+": ")
}

// internal answers 1103 and logs the cause once, here at the edge.
func (g *Gate) internal(w http.ResponseWriter, r *http.Request, err error) {
	g.d.Logger.ErrorContext(r.Context(), "gate: internal error", "path", r.URL.Path, "err", err)
	fail(w, errcode.Internal)
}
