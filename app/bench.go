package app

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/imsrv/imsrv/modules/bench"
	ilog "github.com/imsrv/imsrv/platform/log"
)

// adminTokenEnv is where `imsrv bench` takes the admin token from by
// default: the server's own variable, so one export serves both.
const adminTokenEnv = "IMSRV_ADMIN_TOKEN"

// benchOptions are the flags of `imsrv bench`.
type benchOptions struct {
	cfg     bench.Config
	users   int
	pairs   int
	shard   string
	sources string
	json    bool
	quiet   bool
}

// newBenchCommand returns `imsrv bench` with one subcommand per scenario.
func newBenchCommand() *cobra.Command {
	var opts benchOptions
	cmd := &cobra.Command{
		Use:   "bench connect|chat|login --gate URL",
		Short: "Load a running imsrv over the real protocol and report what it holds",
		Long: "bench loads a running imsrv through its gate (HTTP) and the chat nodes the gate hands out\n" +
			"(TCP), and reports connections and server memory per connection (connect), texts lost,\n" +
			"duplicated and reordered with throughput and latency (chat), or logins per second (login).\n" +
			"It provisions its users through the gate's admin API, so the server needs IMSRV_ADMIN_TOKEN\n" +
			"(the same variable gives bench the token). Users are named <prefix><index> and reused by\n" +
			"later runs with the same prefix. Several bench processes can share a run with --shard i/n.\n" +
			"It stops by itself after --duration (or --count), prints a table or --json, and exits 1\n" +
			"when the run had problems (failed connections or logins, lost or misordered texts).\n" +
			"See docs/BENCHMARKS.md for recipes and figures.",
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	c := &opts.cfg
	pf.StringVar(&c.Gate, "gate", "http://127.0.0.1:8080", "gate base URL of the server under test")
	pf.StringVar(&c.AdminToken, "admin-token", "", "the server's admin token (default $"+adminTokenEnv+")")
	pf.StringVar(&c.Prefix, "prefix", "", `user name prefix; runs with the same prefix reuse the same users (default "bench-<scenario>-")`)
	pf.IntVar(&c.First, "offset", 0, "index of the first user (connect, login) or pair (chat)")
	pf.StringVar(&opts.shard, "shard", "", "i/n: this process drives slice i of n of the users or pairs (e.g. 0/2 and 1/2)")
	pf.Float64Var(&c.Rate, "rate", 0, "target rate: connects/s, texts/s or logins/s in total; 0 = as fast as possible")
	pf.IntVar(&c.Concurrency, "concurrency", 0, "connections opened at once (connect, chat) or login loops (login) (default 64; login 4)")
	pf.DurationVar(&c.Duration, "duration", 0, "how long to hold the connections (connect) or to send / log in (chat, login) (default 30s; chat, login 10s)")
	pf.DurationVar(&c.Heartbeat, "heartbeat", 10*time.Second, "heartbeat interval of every connection")
	pf.StringVar(&opts.sources, "source", "", "local source addresses to spread connections over, e.g. 127.0.0.2-127.0.0.20")
	pf.StringSliceVar(&c.MetricsURLs, "metrics", nil, `server metrics URLs for memory and connection count, comma-separated, summed: every chat node of a split deployment (default <gate>/metrics; "-" = none)`)
	pf.IntSliceVar(&c.PIDs, "pid", nil, "local server pids, comma-separated: memory and CPU time from /proc/<pid>/ instead of the metrics")
	pf.BoolVar(&opts.json, "json", false, "print the report as JSON")
	pf.BoolVar(&opts.quiet, "quiet", false, "no live progress line")

	connect := &cobra.Command{
		Use:   "connect",
		Short: "Open --users logged-in connections and hold them; report server memory per connection",
		Example: "  imsrv bench connect --users 19000 --rate 2000 --duration 60s --source 127.0.0.2-127.0.0.20\n" +
			"  imsrv bench connect --users 19000 --shard 0/2 & imsrv bench connect --users 19000 --shard 1/2",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBench(cmd, bench.ScenarioConnect, &opts) },
	}
	connect.Flags().IntVar(&opts.users, "users", 100, "connections (users) in the run, over all shards")

	chat := &cobra.Command{
		Use:     "chat",
		Short:   "Have --pairs pairs of friends text each other; count lost, duplicated and reordered texts",
		Example: "  imsrv bench chat --pairs 100 --duration 30s\n  imsrv bench chat --pairs 1000 --rate 5000 --json",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runBench(cmd, bench.ScenarioChat, &opts) },
	}
	cf := chat.Flags()
	cf.IntVar(&opts.pairs, "pairs", 1, "pairs of friends in the run, over all shards")
	cf.IntVar(&c.Window, "window", 1, "texts each sender may have awaiting their acknowledgement")
	cf.IntVar(&c.TextSize, "size", 32, "bytes of each text")
	cf.IntVar(&c.Count, "count", 0, "stop after this many texts (0 = after --duration)")
	cf.DurationVar(&c.Drain, "drain", 10*time.Second, "after sending stops, how long to wait for outstanding ACKs and pushes")

	login := &cobra.Command{
		Use:     "login",
		Short:   "Log --users accounts in round-robin through /user_login and the chat node; report logins/s",
		Example: "  imsrv bench login --users 50 --concurrency 8 --duration 20s",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return runBench(cmd, bench.ScenarioLogin, &opts) },
	}
	login.Flags().IntVar(&opts.users, "users", 10, "accounts in the run, over all shards (each new one costs the server a password hash once)")
	login.Flags().IntVar(&c.Count, "count", 0, "stop after this many logins (0 = after --duration)")

	cmd.AddCommand(connect, chat, login)
	return cmd
}

// runBench completes the configuration from the flags, runs the scenario
// until it ends (or SIGINT/SIGTERM) and prints the report.
func runBench(cmd *cobra.Command, scenario string, opts *benchOptions) error {
	cfg := opts.cfg
	cfg.Scenario = scenario
	if cfg.AdminToken == "" {
		cfg.AdminToken = os.Getenv(adminTokenEnv)
	}
	if cfg.AdminToken == "" {
		return fmt.Errorf("bench: no admin token: set %s (as on the server) or --admin-token", adminTokenEnv)
	}
	total := opts.users
	if scenario == bench.ScenarioChat {
		total = opts.pairs
	}
	if total < 1 {
		return errors.New("bench: --users and --pairs must be at least 1")
	}
	if opts.shard != "" {
		sh, err := bench.ParseShard(opts.shard)
		if err != nil {
			return err
		}
		first, n := sh.Slice(total)
		if n == 0 {
			return fmt.Errorf("bench: shard %s of %d has nothing to do", opts.shard, total)
		}
		cfg.Shard, cfg.First, total = sh, cfg.First+first, n
	}
	if scenario == bench.ScenarioChat {
		cfg.Pairs = total
	} else {
		cfg.Users = total
	}
	if opts.sources != "" {
		var err error
		if cfg.Sources, err = bench.ParseSources(opts.sources); err != nil {
			return err
		}
	}
	// bench's own log (warnings) goes to stderr; --log-level applies.
	level, _ := cmd.Flags().GetString("log-level")
	if level == "" {
		level = "warn"
	}
	logger, err := ilog.New(cmd.ErrOrStderr(), level, "auto")
	if err != nil {
		return fmt.Errorf("bench: --log-level: %w", err)
	}
	cfg.Logger = logger
	if !opts.quiet && isTerminal(cmd.ErrOrStderr()) {
		cfg.Progress = cmd.ErrOrStderr()
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	report, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if opts.json {
		err = report.WriteJSON(out)
	} else {
		err = report.WriteText(out)
	}
	if err != nil {
		return err
	}
	if p := report.Problems(); len(p) > 0 {
		return fmt.Errorf("bench: the run had problems: %s", strings.Join(p, ", "))
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
