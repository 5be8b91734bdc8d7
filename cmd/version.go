package cmd

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"paddock/engine"
)

// VersionInfo is what `paddock version -o json` prints.
type VersionInfo struct {
	Version   string   `json:"version"`
	GoVersion string   `json:"go_version"`
	Platform  string   `json:"platform"`
	Stack     []string `json:"node_versions"`
}

func newVersionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the paddock version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := VersionInfo{Version: Version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Stack: nodeVersions()}
			return app.output(info, func() { fmt.Fprintf(app.Out, "paddock %s (%s, %s)\n", info.Version, info.GoVersion, info.Platform) })
		},
	}
}

func nodeVersions() []string { return append([]string(nil), engine.DefaultVersions...) }
