package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/imsrv/imsrv/migrations"
	ilog "github.com/imsrv/imsrv/platform/log"
	"github.com/imsrv/imsrv/platform/sqldb"
)

// flagKeys maps command-line flags to config keys. A flag overrides the
// environment and the config file only when it is given.
var flagKeys = map[string]string{
	"database-url": "database.url",
	"redis-url":    "redis.url",
	"node-name":    "node.name",
	"log-level":    "log.level",
	"log-format":   "log.format",
	"gate-listen":  "gate.listen",
	"chat-listen":  "chat.listen",
	"admin-listen": "admin.listen",
	"roles":        "roles",
}

// NewRootCommand returns the imsrv command tree. version is printed by
// `imsrv version`.
func NewRootCommand(version string) *cobra.Command {
	root := &cobra.Command{
		Use:   "imsrv",
		Short: "imsrv: a self-hosted instant-messaging server speaking the llfc protocol",
		Long: "imsrv is an instant-messaging backend in one binary. `imsrv all` runs every module in one\n" +
			"process on an embedded SQLite file; `imsrv serve --roles=...` runs a subset for split deployments.\n" +
			"Configuration: defaults < config.yaml (or --config) < IMSRV_* environment < flags.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML config file (default ./config.yaml when present)")
	pf.String("database-url", "", "database URL: postgres://... or sqlite://path.db (IMSRV_DATABASE_URL)")
	pf.String("redis-url", "", "redis:// URL; empty = in-memory KV, single process only (IMSRV_REDIS_URL)")
	pf.String("node-name", "", "this node's name, unique among chat nodes (IMSRV_NODE_NAME)")
	pf.String("log-level", "", "debug, info, warn or error (IMSRV_LOG_LEVEL)")
	pf.String("log-format", "", "auto, text or json (IMSRV_LOG_FORMAT)")

	addListenFlags := func(fs *pflag.FlagSet) {
		fs.String("gate-listen", "", "gate HTTP listen address (IMSRV_GATE_LISTEN)")
		fs.String("chat-listen", "", "chat TCP listen address (IMSRV_CHAT_LISTEN)")
		fs.String("admin-listen", "", "separate listener for /healthz, /readyz, /metrics (IMSRV_ADMIN_LISTEN)")
	}

	all := &cobra.Command{
		Use:   "all",
		Short: "Run every module (gate, verify, status, chat) in one process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServer(cmd, map[string]any{"roles": "all"})
		},
	}
	addListenFlags(all.Flags())

	serve := &cobra.Command{
		Use:   "serve --roles=gate,verify,status,chat",
		Short: "Run a subset of the modules; the rest are reached at their peer addresses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("roles") && os.Getenv("IMSRV_ROLES") == "" {
				return fmt.Errorf("serve: --roles is required (any of gate, verify, status, chat, or all)")
			}
			return runServer(cmd, nil)
		},
	}
	serve.Flags().String("roles", "", "comma-separated roles to host: gate, verify, status, chat, all (IMSRV_ROLES)")
	addListenFlags(serve.Flags())

	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, logger, err := loadFromFlags(cmd, nil)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			db, err := sqldb.Open(ctx, cfg.DatabaseURL)
			if err != nil {
				return fmt.Errorf("open database (IMSRV_DATABASE_URL): %w", err)
			}
			defer db.Close()
			applied, err := sqldb.Migrate(ctx, db, migrations.FS)
			if err != nil {
				return err
			}
			logger.Info("migrations applied", "dialect", db.Dialect(), "applied", applied)
			fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s) to %s\n", len(applied), db.Dialect())
			return nil
		},
	}

	ver := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionString(version))
		},
	}
	root.AddCommand(all, serve, migrate, ver, newClientCommand(), newBenchCommand())
	return root
}

func versionString(version string) string {
	s := "imsrv " + version
	if bi, ok := debug.ReadBuildInfo(); ok {
		s += " (" + bi.GoVersion
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += ", " + kv.Value[:12]
			}
		}
		s += ")"
	}
	return s
}

// loadFromFlags loads the config with the command's changed flags on top and
// builds the logger.
func loadFromFlags(cmd *cobra.Command, forced map[string]any) (*Config, *slog.Logger, error) {
	flags := map[string]any{}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if key, ok := flagKeys[f.Name]; ok {
			flags[key] = f.Value.String()
		}
	})
	for k, v := range forced {
		flags[k] = v
	}
	file, _ := cmd.Flags().GetString("config")
	cfg, err := Load(LoadOptions{File: file, Flags: flags})
	if err != nil {
		return nil, nil, err
	}
	logger, err := ilog.New(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return nil, nil, err
	}
	return cfg, logger, nil
}

// runServer loads the config, opens the App and runs it until SIGINT or
// SIGTERM. A second signal kills the process at once.
func runServer(cmd *cobra.Command, forced map[string]any) error {
	cfg, logger, err := loadFromFlags(cmd, forced)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore default handling: a second signal terminates
	}()
	a := New(cfg, logger)
	defer a.Close()
	if err := a.Open(ctx); err != nil {
		return err
	}
	if err := a.Run(ctx); err != nil {
		return err
	}
	logger.Info("stopped cleanly")
	return nil
}

// Main runs the command tree and returns the process exit code.
func Main(ctx context.Context, version string, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(version)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "imsrv: "+strings.TrimSpace(err.Error()))
		return 1
	}
	return 0
}
