package cmd

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/api"
	"paddock/agents/api/client"
	"paddock/agents/director"
	"paddock/engine"
)

// newAPICmd: `paddock api` runs the REST API agent; `paddock api key …`
// and `paddock api user …` manage its credentials (apikey.go).
func newAPICmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "api",
		Short: "Run the REST API (HTTP 12400, HTTPS 12443), or manage its keys (api key …)",
		Long: `Run the REST API: every operator action under /api/v1, authenticated by
API keys (Authorization: ApiKey <key>) or built-in users (basic auth), with
roles platform-admin, deployment-manager and platform-viewer. The OpenAPI
document is served at /api/v1/api-docs.

The API connects to ZooKeeper as the admin role (credential in the state
dir). Create a first key with 'paddock api key create --save'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := app.V
			ctx := cmd.Context()
			// Through the director's tunnel when this host joined (or
			// `paddock up` issued its certificates), renewed while it runs.
			l, s, err := app.agentStore(ctx, cmd, engine.RoleAdmin)
			if err != nil {
				return err
			}
			defer s.Close()
			tlsAddr := ""
			if v.GetString("tls-cert") != "" {
				tlsAddr = v.GetString("tls-addr")
			}
			return api.Run(ctx, api.Config{
				Store: s, Addr: v.GetString("addr"), TLSAddr: tlsAddr,
				CertFile: v.GetString("tls-cert"), KeyFile: v.GetString("tls-key"),
				MetricsAddr: v.GetString("metrics-addr"), Logger: app.Log, NodeLoader: l.Loader(),
				CertDir: director.TLSDir(app.StateDir()),
				OnListen: func(h, hs string) {
					if f := v.GetString("url-file"); f != "" && h != "" {
						_ = os.WriteFile(f, []byte("http://"+h+"\n"), 0o600)
					}
				},
			})
		},
	}
	AddJoinFlags(c)
	f := c.Flags()
	f.String("addr", api.DefaultAddr, "HTTP listen address (empty: no HTTP)")
	f.String("tls-addr", api.DefaultTLSAddr, "HTTPS listen address (used with --tls-cert and --tls-key)")
	f.String("tls-cert", "", "TLS certificate (PEM) for HTTPS")
	f.String("tls-key", "", "TLS private key (PEM) for HTTPS")
	f.String("metrics-addr", "127.0.0.1:9403", "address of /metrics, /healthz and /readyz (empty: none)")
	f.String("url-file", "", "write the API's URL to this file once listening (scripts using --addr with port 0)")
	addAPIKeyCmds(app, c)
	return c
}

// addAPIClientFlags adds the flags every API client command takes.
func addAPIClientFlags(c *cobra.Command, persistent bool) {
	f := c.Flags()
	if persistent {
		f = c.PersistentFlags()
	}
	f.String("api-url", "http://127.0.0.1:12400", "API URL (PADDOCK_API_URL; paddock up writes it to the config file)")
	f.String("api-key", "", "API key (PADDOCK_API_KEY; paddock up writes one to the config file)")
	f.String("api-key-file", "", "file holding the API key (used when --api-key is empty)")
}

// apiClient builds the API client from flags, environment and config.
func (app *App) apiClient() (*client.Client, error) {
	v := app.V
	return client.FromSettings(client.Settings{URL: v.GetString("api-url"), Key: v.GetString("api-key"),
		KeyFile: v.GetString("api-key-file"), Timeout: v.GetDuration("timeout") + 20*time.Second})
}

// apiContext bounds one CLI call to the API.
func (app *App) apiContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), app.V.GetDuration("timeout")+20*time.Second)
}

// emit prints the API's raw JSON with -o json, else runs text.
func (app *App) emit(raw []byte, text func()) error {
	if app.JSON() {
		_, err := app.Out.Write(raw)
		return err
	}
	text()
	return nil
}

// apiFailure turns a client error into the CLI's error: a 4xx caused by
// the request (invalid, unknown) is still a failure (exit 1); the API's
// message is printed as is.
func apiFailure(err error) error {
	var ae *client.Error
	if errors.As(err, &ae) {
		return &ExitError{Code: ExitFailure, Err: errors.New(ae.Explained())}
	}
	return err
}
