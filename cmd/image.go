package cmd

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"paddock/agents/allocator"
	"paddock/engine"
)

// newImageCmd: `paddock image build [--version V]...` builds the node
// images FROM scratch out of this (static) binary, with no registry.
func newImageCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "image", Short: "Build the local node images"}
	b := &cobra.Command{
		Use:   "build",
		Short: "Build paddock/node:<version> images from this binary (FROM scratch, no registry)",
		Long: `Build the node images the allocators run, FROM scratch, out of a static
paddock binary (this one by default): non-root user, the binary as
entrypoint (paddock node --version V) and as its own HEALTHCHECK.
Without --version, every version the platform offers by default is built.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			versions, _ := f.GetStringSlice("version")
			if len(versions) == 0 {
				versions = engine.DefaultVersions
			}
			bin, _ := f.GetString("binary")
			if bin == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find this binary: %w (pass --binary)", err)
				}
				bin = exe
			}
			repo, _ := f.GetString("repo")
			var progress io.Writer = io.Discard
			if v, _ := f.GetBool("verbose"); v {
				progress = app.Err
			}
			built, err := allocator.BuildImages(app.Ctx, bin, repo, versions, progress, app.Log)
			if err != nil {
				return err
			}
			if app.JSON() {
				return app.PrintJSON(map[string]any{"images": built})
			}
			for _, ref := range built {
				fmt.Fprintf(app.Out, "built %s\n", ref)
			}
			return nil
		},
	}
	b.Flags().StringSlice("version", nil, "version(s) to build (default: the platform's default versions)")
	b.Flags().String("repo", allocator.DefaultImageRepo, "image repository")
	b.Flags().String("binary", "", "static paddock binary to pack (default: this binary)")
	b.Flags().Bool("verbose", false, "print the build output on stderr")
	c.AddCommand(b)
	return c
}
