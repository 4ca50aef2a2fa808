// Package app is imsrv's composition root: it turns a Config into running
// modules, deciding from the roles which modules live in this process, and
// owns their lifecycle (open, run, graceful shutdown, close).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/imsrv/imsrv/migrations"
	"github.com/imsrv/imsrv/modules/account"
	"github.com/imsrv/imsrv/modules/chat"
	"github.com/imsrv/imsrv/modules/chat/chatrpc"
	"github.com/imsrv/imsrv/modules/chat/chatstore"
	"github.com/imsrv/imsrv/modules/chat/msgstore"
	"github.com/imsrv/imsrv/modules/gate"
	"github.com/imsrv/imsrv/modules/status"
	"github.com/imsrv/imsrv/modules/status/statusrpc"
	"github.com/imsrv/imsrv/modules/verify"
	"github.com/imsrv/imsrv/modules/verify/verifyrpc"
	"github.com/imsrv/imsrv/platform/kv"
	"github.com/imsrv/imsrv/platform/mail"
	"github.com/imsrv/imsrv/platform/metrics"
	"github.com/imsrv/imsrv/platform/sqldb"
)

// App is one imsrv process. Use New, then Open (fallible start-up: storage,
// migrations, listeners), then Run until its context ends, then Close.
type App struct {
	cfg     *Config
	logger  *slog.Logger
	metrics *metrics.Metrics

	db       sqldb.DB
	kv       kv.Store
	verify   verify.Service
	status   status.Service
	accounts *account.Store

	chat     *chat.Server
	messages *msgstore.Store
	peers    *chat.PeerPool

	gateLn  net.Listener
	adminLn net.Listener
	chatLn  net.Listener
	rpc     []*rpcEndpoint // gRPC servers this process offers, by listen address
	clients []io.Closer    // gRPC connections to remote modules

	draining atomic.Bool
}

// New returns an App for cfg. It has no side effects.
func New(cfg *Config, logger *slog.Logger) *App {
	return &App{cfg: cfg, logger: logger, metrics: metrics.New()}
}

// Open connects storage, applies migrations, builds the modules this
// process hosts and binds its listeners. On error everything opened so far
// is closed again.
func (a *App) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	cfg := a.cfg
	if err := a.checkTopology(); err != nil {
		return err
	}

	store, err := kv.Open(cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("open KV (IMSRV_REDIS_URL): %w", err)
	}
	a.kv = kv.WithPrefix(store, cfg.RedisPrefix)
	if cfg.Has(RoleGate) || cfg.Has(RoleChat) {
		if a.db, err = sqldb.Open(ctx, cfg.DatabaseURL); err != nil {
			return fmt.Errorf("open database (IMSRV_DATABASE_URL): %w", err)
		}
		applied, err := sqldb.Migrate(ctx, a.db, migrations.FS)
		if err != nil {
			return fmt.Errorf("migrate database: %w", err)
		}
		if len(applied) > 0 {
			a.logger.Info("database migrated", "applied", applied)
		}
		a.accounts = account.NewStore(a.db)
	}

	switch {
	case cfg.Has(RoleVerify):
		sender, err := a.mailSender()
		if err != nil {
			return err
		}
		v := verify.New(verify.Config{
			TTL: cfg.Verify.TTL, MaxAttempts: cfg.Verify.Attempts,
			PerEmail: cfg.Verify.PerEmail, PerAddr: cfg.Verify.PerAddr,
			Window: cfg.Verify.Window, SendTimeout: cfg.Verify.SendTimeout,
		}, a.kv, sender, a.logger.With("module", "verify"))
		a.verify = v
		if cfg.Verify.Listen != "" {
			if err := a.offer(cfg.Verify.Listen, "verify", func(s *grpc.Server) { verifyrpc.Register(s, v) }); err != nil {
				return err
			}
		}
	case cfg.Peers.Verify != "":
		cc, err := a.dial(cfg.Peers.Verify)
		if err != nil {
			return fmt.Errorf("verify peer (IMSRV_PEERS_VERIFY=%s): %w", cfg.Peers.Verify, err)
		}
		a.verify = verifyrpc.NewClient(cc)
	}
	switch {
	case cfg.Has(RoleStatus):
		st := status.New(status.Config{NodeTTL: cfg.Status.NodeTTL, TokenTTL: cfg.Status.TokenTTL},
			a.kv, a.logger.With("module", "status"))
		a.status = st
		if cfg.Status.Listen != "" {
			if err := a.offer(cfg.Status.Listen, "status", func(s *grpc.Server) { statusrpc.Register(s, st) }); err != nil {
				return err
			}
		}
	case cfg.Peers.Status != "":
		cc, err := a.dial(cfg.Peers.Status)
		if err != nil {
			return fmt.Errorf("status peer (IMSRV_PEERS_STATUS=%s): %w", cfg.Peers.Status, err)
		}
		a.status = statusrpc.NewClient(cc)
	}

	if cfg.Has(RoleGate) {
		if a.gateLn, err = net.Listen("tcp", cfg.Gate.Listen); err != nil {
			return fmt.Errorf("gate listen (IMSRV_GATE_LISTEN=%s): %w", cfg.Gate.Listen, err)
		}
	}
	if cfg.Has(RoleChat) {
		a.raiseFileLimit()
		if cfg.RedisURL != "" {
			// A shared KV means other chat nodes may route to this one.
			a.peers = chat.NewPeerPool(a.status, a.dialPeer)
		}
		a.messages = msgstore.New(a.db, msgstore.Config{
			MaxBatch: cfg.Chat.Batch, MaxWait: cfg.Chat.BatchWait,
			QueueLen: cfg.Chat.StoreQueue, MaxContent: cfg.Chat.MaxText,
		}, a.logger.With("module", "chat", "part", "msgstore"))
		a.chat = chat.New(chat.Config{
			NodeName: cfg.NodeName, Heartbeat: cfg.Chat.Heartbeat, LoginTimeout: cfg.Chat.LoginTimeout,
			MaxConns: cfg.Chat.MaxConns, SendQueue: cfg.Chat.SendQueue, LegacyGap: cfg.Chat.LegacyGap,
			WriteTimeout: cfg.Chat.WriteTimeout, MaxBody: cfg.Chat.MaxBody,
		}, chat.Deps{
			Tokens: a.status, Store: chatstore.New(a.db), Messages: a.messages, Accounts: a.accounts, KV: a.kv,
			Logger: a.logger.With("module", "chat"), Registry: a.metrics.Registry, Peers: a.peers,
		})
		if a.chatLn, err = net.Listen("tcp", cfg.Chat.Listen); err != nil {
			return fmt.Errorf("chat listen (IMSRV_CHAT_LISTEN=%s): %w", cfg.Chat.Listen, err)
		}
		if a.peers != nil {
			srv := a.chat
			if err := a.offer(cfg.Chat.RPCListen, "chat", func(s *grpc.Server) { chatrpc.Register(s, srv) }); err != nil {
				return err
			}
		}
	}
	if cfg.AdminListen != "" {
		if a.adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			return fmt.Errorf("admin listen (IMSRV_ADMIN_LISTEN=%s): %w", cfg.AdminListen, err)
		}
	}
	return nil
}

// checkTopology refuses role sets that cannot work: a module needed here
// that is neither hosted here nor reachable at a configured peer, or roles
// split over processes without shared storage.
func (a *App) checkTopology() error {
	cfg := a.cfg
	need := func(role, peer, env string) error {
		if cfg.Has(role) || peer != "" {
			return nil
		}
		return fmt.Errorf("roles %v need the %s module: host it here (--roles) or set %s to its gRPC address", cfg.Roles, role, env)
	}
	if cfg.Has(RoleGate) {
		if err := need(RoleVerify, cfg.Peers.Verify, "IMSRV_PEERS_VERIFY"); err != nil {
			return err
		}
		if err := need(RoleStatus, cfg.Peers.Status, "IMSRV_PEERS_STATUS"); err != nil {
			return err
		}
	}
	if cfg.Has(RoleChat) {
		if err := need(RoleStatus, cfg.Peers.Status, "IMSRV_PEERS_STATUS"); err != nil {
			return err
		}
	}
	var split []string
	for _, kv := range [][2]string{
		{"IMSRV_PEERS_VERIFY", cfg.Peers.Verify}, {"IMSRV_PEERS_STATUS", cfg.Peers.Status},
		{"IMSRV_VERIFY_LISTEN", cfg.Verify.Listen}, {"IMSRV_STATUS_LISTEN", cfg.Status.Listen},
	} {
		if kv[1] != "" {
			split = append(split, kv[0])
		}
	}
	if len(split) == 0 {
		return nil
	}
	if cfg.RedisURL == "" {
		return fmt.Errorf("roles are split over processes (%s set): IMSRV_REDIS_URL is required, the in-memory KV is single-process",
			strings.Join(split, ", "))
	}
	if (cfg.Has(RoleGate) || cfg.Has(RoleChat)) && strings.HasPrefix(cfg.DatabaseURL, "sqlite:") {
		return fmt.Errorf("roles are split over processes (%s set): IMSRV_DATABASE_URL must be a shared postgres:// database, SQLite is single-process",
			strings.Join(split, ", "))
	}
	return nil
}

func (a *App) mailSender() (mail.Sender, error) {
	v := a.cfg.Verify
	if v.Sender == "log" {
		return mail.NewLogSender(a.logger.With("module", "verify", "sender", "log")), nil
	}
	s, err := mail.NewSMTPSender(mail.SMTPConfig{
		Host: v.SMTP.Host, Port: v.SMTP.Port, User: v.SMTP.User, Password: v.SMTP.Password,
		From: v.SMTP.From, TLS: v.SMTP.TLS, Timeout: v.SendTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("verify mail sender (IMSRV_VERIFY_SMTP_*): %w", err)
	}
	return s, nil
}

// Accounts is the account store (nil when neither gate nor chat is hosted);
// for embedding and provisioning.
func (a *App) Accounts() *account.Store { return a.accounts }

// Status is the status module this process uses (nil when it needs none).
func (a *App) Status() status.Service { return a.status }

// RPCAddr is the bound gRPC listener address serving the named module
// ("verify", "status" or "chat"), or "".
func (a *App) RPCAddr(module string) string {
	for _, e := range a.rpc {
		if slices.Contains(e.modules, module) {
			return e.ln.Addr().String()
		}
	}
	return ""
}

// GateAddr is the bound gate listener address ("" when gate is not hosted).
func (a *App) GateAddr() string { return addrOf(a.gateLn) }

// ChatAddr is the bound chat listener address ("" when chat is not hosted).
func (a *App) ChatAddr() string { return addrOf(a.chatLn) }

// ChatAdvertise is the host:port this node's clients are told to dial.
func (a *App) ChatAdvertise() string {
	if a.chatLn == nil {
		return ""
	}
	return advertiseFor(a.cfg.Chat.Advertise, a.chatLn.Addr())
}

// AdminAddr is the bound admin listener address ("" when not configured).
func (a *App) AdminAddr() string { return addrOf(a.adminLn) }

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// Run serves until ctx is done, then shuts down gracefully: listeners stop
// accepting, in-flight requests get up to shutdown.timeout to finish, chat
// nodes deregister. It returns the first serving error, or nil after a clean
// shutdown.
func (a *App) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	cfg := a.cfg
	if a.gateLn != nil {
		gw := gate.New(gate.Config{
			CORSOrigins: cfg.Gate.CORS, TrustedProxies: cfg.Gate.TrustedProxies, MaxBody: cfg.Gate.MaxBody,
			AdminToken: cfg.AdminToken,
		}, gate.Deps{
			Verify: a.verify, Status: a.status, Accounts: a.accounts,
			Metrics: a.metrics, Logger: a.logger.With("module", "gate"),
		})
		var extra []func(chi.Router)
		if a.adminLn == nil {
			extra = append(extra, a.opsRoutes)
		}
		a.serveHTTP(ctx, g, "gate", a.gateLn, gw.Handler(extra...))
	}
	if a.adminLn != nil {
		r := chi.NewRouter()
		r.Use(a.metrics.HTTPMiddleware)
		a.opsRoutes(r)
		a.serveHTTP(ctx, g, "admin", a.adminLn, r)
	}
	if a.chat != nil {
		ann := &status.Announcer{
			Service:  a.status,
			Node:     status.Node{Name: cfg.NodeName, Addr: a.ChatAdvertise(), RPCAddr: a.chatRPCAdvertise()},
			Interval: cfg.Status.NodeTTL / 3,
			Logger:   a.logger.With("module", "chat"),
		}
		g.Go(func() error { return ann.Run(ctx) })
		// The message store outlives the sessions: texts in flight while the
		// node drains are still committed (and acknowledged) or refused.
		storeCtx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
		g.Go(func() error { return a.messages.Run(storeCtx) })
		g.Go(func() error {
			defer stopStore()
			return a.chat.Serve(ctx, a.chatLn, cfg.ShutdownTimeout)
		})
	}
	for _, e := range a.rpc {
		a.serveRPC(ctx, g, e)
	}
	g.Go(func() error {
		<-ctx.Done()
		a.draining.Store(true)
		a.logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
		return nil
	})
	a.logger.Info("imsrv running", "roles", cfg.Roles, "node", cfg.NodeName,
		"gate", a.GateAddr(), "chat", a.ChatAddr(), "admin", a.AdminAddr())
	return g.Wait()
}

// serveHTTP runs an HTTP server on ln in g and shuts it down gracefully when
// ctx ends.
func (a *App) serveHTTP(ctx context.Context, g *errgroup.Group, name string, ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	g.Go(func() error {
		a.logger.Info("listening", "server", name, "addr", ln.Addr().String())
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s server: %w", name, err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
			return fmt.Errorf("%s server: graceful shutdown: %w", name, err)
		}
		return nil
	})
}

// opsRoutes registers /healthz (alive), /readyz (storage reachable, not
// draining) and /metrics.
func (a *App) opsRoutes(r chi.Router) {
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := a.ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "{\"status\":\"unavailable\",\"reason\":%q}\n", err.Error())
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	r.Method(http.MethodGet, "/metrics", a.metrics.Handler())
}

func (a *App) ready(ctx context.Context) error {
	if a.draining.Load() {
		return errors.New("shutting down")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if a.db != nil {
		if err := a.db.Ping(ctx); err != nil {
			return fmt.Errorf("database: %w", err)
		}
	}
	if err := a.kv.Ping(ctx); err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	return nil
}

// Close releases listeners and storage. It is safe after a failed Open.
func (a *App) Close() error {
	var errs []error
	for _, ln := range []net.Listener{a.gateLn, a.adminLn, a.chatLn} {
		if ln != nil {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	for _, e := range a.rpc {
		e.srv.Stop()
		if err := e.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	a.rpc = nil
	if a.peers != nil {
		errs = append(errs, a.peers.Close())
	}
	for _, c := range a.clients {
		errs = append(errs, c.Close())
	}
	a.clients = nil
	if a.db != nil {
		errs = append(errs, a.db.Close())
	}
	if a.kv != nil {
		errs = append(errs, a.kv.Close())
	}
	return errors.Join(errs...)
}
