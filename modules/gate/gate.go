// Package gate is imsrv's HTTP front door: the llfc endpoints for
// verification codes, registration, password reset and login (which hands out
// a chat node and a token). It reaches verify and status only through their
// Service interfaces, so they may run in this process or behind gRPC.
package gate

import (
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/go-chi/chi/v5"

	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/platform/metrics"
)

// Config holds the gate's HTTP settings.
type Config struct {
	// CORSOrigins are the origins allowed to call the API from a browser; "*" allows any.
	CORSOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// deciding a client's address (for per-address caps).
	TrustedProxies []netip.Prefix
	// MaxBody is the largest accepted request body in bytes; default 64 KiB.
	MaxBody int64
	// AdminToken enables the admin API (/admin/...) for requests bearing it
	// ("Authorization: Bearer <token>"); empty = no admin API (404).
	AdminToken string
}

// Deps are the gate's collaborators.
type Deps struct {
	Verify   verify.Service
	Status   status.Service
	Accounts *account.Store
	Metrics  *metrics.Metrics // optional
	Logger   *slog.Logger
}

// Gate serves the HTTP API.
type Gate struct {
	cfg Config
	d   Deps
}

// New returns the gate. It does no I/O.
func New(cfg Config, d Deps) *Gate {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 64 << 10
	}
	if len(cfg.CORSOrigins) == 0 {
		cfg.CORSOrigins = []string{"*"}
	}
	return &Gate{cfg: cfg, d: d}
}

// Handler returns the gate's HTTP handler. extra registers more routes on the
// same router (health and metrics when they share the gate's listener).
func (g *Gate) Handler(extra ...func(chi.Router)) http.Handler {
	r := chi.NewRouter()
	if g.d.Metrics != nil {
		r.Use(g.d.Metrics.HTTPMiddleware)
	}
	r.Use(g.recoverer, g.cors)
	r.Post("/get_varifycode", g.getVarifyCode)
	r.Post("/user_register", g.userRegister)
	r.Post("/reset_pwd", g.resetPwd)
	r.Post("/user_login", g.userLogin)
	if g.cfg.AdminToken != "" {
		g.adminRoutes(r)
	}
	for _, f := range extra {
		f(r)
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": http.StatusNotFound, "message": "no such endpoint: " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": http.StatusMethodNotAllowed, "message": "method " + r.Method + " not allowed on " + r.URL.Path})
	})
	return r
}
