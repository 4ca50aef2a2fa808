package gate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/imsrv/imsrv/modules/errcode"
)

// errBodyTooLarge marks a request body over Config.MaxBody.
var errBodyTooLarge = errors.New("request body too large")

// decode reads the JSON body into v. The Content-Type is not checked (old
// clients send anything). Unknown fields are ignored; wrong types, trailing
// garbage and bodies over the limit are errors.
func (g *Gate) decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errBodyTooLarge
	}
	if err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

// fail writes an error answer: HTTP 200 with the code in "error" (what llfc
// clients expect), except a body over the limit, which is a 413.
func fail(w http.ResponseWriter, code errcode.Code) {
	writeJSON(w, http.StatusOK, map[string]any{"error": code, "message": code.Message()})
}

func failDecode(w http.ResponseWriter, err error) {
	if errors.Is(err, errBodyTooLarge) {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": errcode.JSON, "message": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"error": errcode.JSON, "message": errcode.JSON.Message()})
}

func failf(w http.ResponseWriter, code errcode.Code, detail string) {
	writeJSON(w, http.StatusOK, map[string]any{"error": code, "message": code.Message() + ": " + detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// clientAddr is the requesting client's IP: the peer, or — when the peer is a
// trusted proxy — the right-most address in X-Forwarded-For that is not itself
// a trusted proxy.
func (g *Gate) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !g.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !g.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

func (g *Gate) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// cors answers preflights and sets Access-Control-Allow-Origin for allowed origins.
func (g *Gate) cors(next http.Handler) http.Handler {
	anyOrigin := slices.Contains(g.cfg.CORSOrigins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && (anyOrigin || slices.Contains(g.cfg.CORSOrigins, origin))
		if allowed {
			h := w.Header()
			if anyOrigin {
				h.Set("Access-Control-Allow-Origin", "*")
			} else {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
			}
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if allowed {
				h := w.Header()
				h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a handler panic into a 1103 answer and one error log line.
func (g *Gate) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				g.d.Logger.ErrorContext(r.Context(), "gate: handler panic", "path", r.URL.Path, "panic", v)
				fail(w, errcode.Internal)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
