package cmd

import "github.com/spf13/cobra"

func newTunnelCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "tunnel",
		Short: "Run a TLS tunnel end (stunnel-style, mutual TLS)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return notYet("paddock tunnel")
		},
	}
}
