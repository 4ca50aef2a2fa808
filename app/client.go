package app

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
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/imsrv/imsrv/modules/chat/chatclient"
	"github.com/imsrv/imsrv/modules/chat/chatclient/console"
	"github.com/imsrv/imsrv/modules/chat/wire"
	"github.com/imsrv/imsrv/modules/errcode"
)

// clientPasswordEnv holds the password of `imsrv client` when --password is
// not given.
const clientPasswordEnv = "IMSRV_CLIENT_PASSWORD"

const (
	// clientTimeout bounds the gate login and the chat connection and login.
	clientTimeout = 10 * time.Second
	// clientHeartbeat is how often the client beats, as llfc clients do.
	clientHeartbeat = 10 * time.Second
)

// clientOptions are the flags of `imsrv client`.
type clientOptions struct {
	gate     string
	email    string
	password string
}

// newClientCommand returns `imsrv client`, a terminal chat client for trying
// a server out, from two terminals for example.
func newClientCommand() *cobra.Command {
	var opts clientOptions
	cmd := &cobra.Command{
		Use:   "client --email ADDRESS",
		Short: "Chat from a terminal: log in through the gate, then chat line by line",
		Long: "client logs in through the gate's /user_login, connects to the chat node it names and runs\n" +
			"a line-oriented chat session on standard input: /help lists the commands, other lines are\n" +
			"texts to the friend chosen with /to. The password comes from --password, else from\n" +
			clientPasswordEnv + ", else from a prompt when standard input is a terminal.",
		Example: "  imsrv client --gate http://127.0.0.1:8080 --email alice@example.com\n" +
			"  " + clientPasswordEnv + "=secret imsrv client --email bob@example.com",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runClient(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.gate, "gate", "http://127.0.0.1:8080", "gate base URL")
	f.StringVar(&opts.email, "email", "", "e-mail address to log in with (required)")
	f.StringVar(&opts.password, "password", "", "password (default $"+clientPasswordEnv+"; prompted for on a terminal)")
	_ = cmd.MarkFlagRequired("email")
	return cmd
}

// runClient logs in, runs the console until it ends and closes the
// connection. Being logged in elsewhere and an interrupt are normal ends.
func runClient(cmd *cobra.Command, opts clientOptions) error {
	gate, err := parseGateURL(opts.gate)
	if err != nil {
		return err
	}
	password, err := clientPassword(cmd, opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, login, err := connectClient(ctx, gate, opts.email, password)
	if err != nil {
		return err
	}
	defer c.Close()

	err = console.New(c, login, cmd.OutOrStdout()).Run(ctx, cmd.InOrStdin())
	if errors.Is(err, console.ErrKicked) || ctx.Err() != nil {
		return nil
	}
	return err
}

// connectClient logs in through the gate, then on the chat node it names.
func connectClient(ctx context.Context, gate *url.URL, email, password string) (*chatclient.Client, *wire.LoginRsp, error) {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	gl, err := gateLogin(ctx, gate, email, password)
	if err != nil {
		return nil, nil, err
	}
	addr := gl.chatAddr(gate)
	c, err := chatclient.Dial(ctx, addr, chatclient.WithHeartbeat(clientHeartbeat))
	if err != nil {
		return nil, nil, err
	}
	login, err := c.Login(ctx, gl.UID, gl.Token)
	if err != nil {
		c.Close()
		if serr, ok := errors.AsType[*chatclient.ServerError](err); ok {
			return nil, nil, fmt.Errorf("chat login at %s failed: error %d: %s", addr, serr.Code, errcode.Code(serr.Code).Message())
		}
		return nil, nil, fmt.Errorf("chat login at %s: %w", addr, err)
	}
	return c, login, nil
}

// clientPassword returns the password from the flag, the environment or a
// prompt on the terminal, in that order.
func clientPassword(cmd *cobra.Command, opts clientOptions) (string, error) {
	if opts.password != "" {
		return opts.password, nil
	}
	if p := os.Getenv(clientPasswordEnv); p != "" {
		return p, nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", fmt.Errorf("no password: give --password or set %s", clientPasswordEnv)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "password for %s: ", opts.email)
	p, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(cmd.ErrOrStderr())
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	return string(p), nil
}

// parseGateURL parses the --gate flag; "host:port" means http://host:port.
func parseGateURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--gate %q: want an http:// or https:// URL", s)
	}
	return u, nil
}

// gateLoginRsp is the gate's /user_login answer.
type gateLoginRsp struct {
	Error int    `json:"error"`
	UID   int32  `json:"uid"`
	Token string `json:"token"`
	Host  string `json:"host"`
	Port  string `json:"port"` // a string, for the Qt client
}

// chatAddr returns the chat node's address. A node that advertises no host,
// or an unspecified one, is taken to be on the gate's host.
func (r *gateLoginRsp) chatAddr(gate *url.URL) string {
	host := r.Host
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = gate.Hostname()
	}
	return net.JoinHostPort(host, r.Port)
}

// gateLogin posts /user_login. A refusal is an error naming the code and its
// meaning.
func gateLogin(ctx context.Context, gate *url.URL, email, password string) (*gateLoginRsp, error) {
	body, err := json.Marshal(map[string]string{"email": email, "passwd": password})
	if err != nil {
		return nil, err
	}
	endpoint := gate.JoinPath("user_login").String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("login: %s answered HTTP %s", endpoint, resp.Status)
	}
	var rsp gateLoginRsp
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rsp); err != nil {
		return nil, fmt.Errorf("login: %s: bad answer: %w", endpoint, err)
	}
	if rsp.Error != 0 {
		return nil, fmt.Errorf("login failed: error %d: %s", rsp.Error, errcode.Code(rsp.Error).Message())
	}
	if rsp.Token == "" || rsp.Port == "" {
		return nil, fmt.Errorf("login: %s: answer without token or port", endpoint)
	}
	return &rsp, nil
}
