package cmd

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/director"
	"paddock/engine"
)

// newTokenCmd: `paddock token create|list|revoke`, roles tokens for
// adding hosts. They run with the director role's credential (the host
// where `paddock init` ran, or --zk-credential director.json).
func newTokenCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "token", Short: "Roles tokens for adding hosts (create, list, revoke)"}
	create := &cobra.Command{Use: "create", Short: "Create a roles token (prints it; it pins the platform CA)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			roles := app.V.GetStringSlice("roles")
			if len(roles) == 0 {
				return usageErr("--roles is required, e.g. --roles allocator,proxy")
			}
			if _, err := director.NormalizeRoles(roles); err != nil {
				return usageErr("%v", err)
			}
			persistent := app.V.GetBool("persistent")
			ttl := app.V.GetDuration("ttl")
			if persistent && cmd.Flags().Changed("ttl") {
				return usageErr("--ttl and --persistent exclude each other: persistent tokens live until revoked")
			}
			return withDirectorStore(cmd.Context(), app, func(ctx context.Context, s *engine.Store) error {
				tok, rec, err := director.CreateToken(ctx, s, roles, ttl, persistent)
				if err != nil {
					return err
				}
				if app.JSON() {
					return app.PrintJSON(struct {
						Token string `json:"token"`
						director.TokenRecord
					}{tok.String(), rec})
				}
				fmt.Fprintln(app.Out, tok.String())
				fmt.Fprintln(app.Err, rec.Describe())
				return nil
			})
		}}
	create.Flags().StringSlice("roles", nil, "roles the token grants (allocator, proxy, constructor, director, admin; api/console mean admin)")
	create.Flags().Duration("ttl", director.DefaultTokenTTL, "lifetime of an ephemeral token")
	create.Flags().Bool("persistent", false, "a token that lives until revoked (listed by `paddock token list`)")

	list := &cobra.Command{Use: "list", Short: "List roles tokens (persistent and unexpired)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDirectorStore(cmd.Context(), app, func(ctx context.Context, s *engine.Store) error {
				toks, err := director.ListTokens(ctx, s)
				if err != nil {
					return err
				}
				if app.JSON() {
					if toks == nil {
						toks = []director.TokenRecord{}
					}
					return app.PrintJSON(toks)
				}
				return director.WriteTokens(app.Out, toks)
			})
		}}
	revoke := &cobra.Command{Use: "revoke ID", Short: "Revoke a roles token (by the id shown by list, or the token itself)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDirectorStore(cmd.Context(), app, func(ctx context.Context, s *engine.Store) error {
				rec, err := director.RevokeToken(ctx, s, args[0])
				if err != nil {
					return err
				}
				return app.output(rec, func() { fmt.Fprintf(app.Out, "token %s revoked (roles %v)\n", rec.ID, rec.Roles) })
			})
		}}
	c.AddCommand(create, list, revoke)
	return c
}

func withDirectorStore(ctx context.Context, app *App, fn func(context.Context, *engine.Store) error) error {
	ctx, cancel := context.WithTimeout(ctx, app.V.GetDuration("timeout")+5*time.Second)
	defer cancel()
	s, err := app.Connect(ctx, engine.RoleDirector, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s)
}
