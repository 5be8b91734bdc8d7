package cmd

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"paddock/agents/api/client"
	"paddock/agents/platform"
	"paddock/engine"
	"paddock/engine/service"
)

// addAPIKeyCmds adds `paddock api key create|list|revoke` and `paddock
// api user NAME`. They talk to ZooKeeper directly as the admin role (the
// first key cannot come from the API itself), like `paddock init`.
func addAPIKeyCmds(app *App, parent *cobra.Command) {
	key := &cobra.Command{Use: "key", Short: "Manage API keys (stored hashed in ZooKeeper)"}
	withSvc := func(cmd *cobra.Command, fn func(ctx context.Context, svc *service.Service) error) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("timeout")+10e9)
		defer cancel()
		s, err := app.Connect(ctx, engine.RoleAdmin, nil)
		if err != nil {
			return err
		}
		defer s.Close()
		return fn(ctx, service.New(s, service.WithLogger(app.Log)))
	}
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key; the key is printed once (--save also writes it to the config file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withSvc(cmd, func(ctx context.Context, svc *service.Service) error {
				name, role := app.V.GetString("name"), app.V.GetString("role")
				id, k, err := svc.CreateAPIKeyBy(ctx, name, role, "cli")
				if err != nil {
					return &ExitError{Code: ExitUsage, Err: err}
				}
				if app.V.GetBool("save") {
					if err := platform.WriteConfigKeys(filepath.Join(app.StateDir(), "config.yaml"), map[string]any{"api-key": k}); err != nil {
						return err
					}
				}
				return app.output(map[string]string{"id": id, "name": name, "role": role, "key": k}, func() { fmt.Fprintln(app.Out, k) })
			})
		},
	}
	create.Flags().String("name", "cli", "key name")
	create.Flags().String("role", service.RolePlatformAdmin, "role: platform-admin, deployment-manager or platform-viewer")
	create.Flags().Bool("save", false, "write the key to the config file as api-key (the CLI then uses it)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys and users (never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withSvc(cmd, func(ctx context.Context, svc *service.Service) error {
				keys, err := svc.ListAPIKeys(ctx)
				if err != nil {
					return err
				}
				if app.JSON() {
					return app.PrintJSON(map[string]any{"keys": keys})
				}
				return client.WriteKeys(app.Out, keys)
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key (or user-<name>) at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withSvc(cmd, func(ctx context.Context, svc *service.Service) error {
				if err := svc.RevokeAPIKey(ctx, args[0], "cli"); err != nil {
					return err
				}
				if !app.JSON() {
					fmt.Fprintf(app.Out, "revoked %s\n", args[0])
					return nil
				}
				return app.PrintJSON(map[string]string{"id": args[0], "status": "revoked"})
			})
		},
	}
	key.AddCommand(create, list, revoke)
	user := &cobra.Command{
		Use:   "user NAME",
		Short: "Create or replace a built-in user for basic auth; the password is read from stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			line, err := bufio.NewReader(app.In).ReadString('\n')
			pw := strings.TrimRight(line, "\r\n")
			if pw == "" {
				return usageErr("no password on stdin: echo the password into `paddock api user %s` (%v)", args[0], err)
			}
			return withSvc(cmd, func(ctx context.Context, svc *service.Service) error {
				if err := svc.SetUser(ctx, args[0], app.V.GetString("role"), pw, "cli"); err != nil {
					return &ExitError{Code: ExitUsage, Err: err}
				}
				fmt.Fprintf(app.Err, "user %s set\n", args[0])
				return nil
			})
		},
	}
	user.Flags().String("role", service.RolePlatformViewer, "role: platform-admin, deployment-manager or platform-viewer")
	parent.AddCommand(key, user)
}
