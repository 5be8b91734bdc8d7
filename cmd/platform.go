package cmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/api/client"
	"paddock/agents/platform"
	"paddock/engine/headroom"
)

// newPlatformCmd groups the platform-wide operator verbs.
func newPlatformCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "platform", Short: "Platform-wide operations: zone-loss headroom, backup and restore of the platform's own state"}
	c.AddCommand(&cobra.Command{
		Use:   "headroom",
		Short: "Can the platform survive losing each zone, and what would vacating each allocator need?",
		Long: `Runs the constructor's placement as a dry-run: for each zone, could every
instance in it be re-placed in the other zones if it were lost; for each
allocator holding instances, could it be vacated. Names the deployments
that could not be re-placed or would lose high availability, and the
memory missing (shortfall). -o json prints the API's answer.`,
		Args: cobra.NoArgs,
		RunE: apiCall[headroom.Report]{
			call: func(ctx context.Context, cl *client.Client, _ []string) (headroom.Report, []byte, error) {
				return cl.Headroom(ctx)
			},
			text: func(w io.Writer, r headroom.Report) { r.WriteText(w) },
		}.runE(app),
	})
	c.AddCommand(newPlatformBackupCmd(app, false), newPlatformBackupCmd(app, true))
	return c
}

// newPlatformBackupCmd: `paddock platform backup FILE` and `paddock
// platform restore FILE` (agents/platform.Backup, Restore).
func newPlatformBackupCmd(app *App, restore bool) *cobra.Command {
	c := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the platform's ZooKeeper state and its CA (encrypted) to FILE",
		Long: `Copies every persistent znode of the platform (deployments, plans,
allocators, routes, keys, configuration) as one consistent cut, with the
director's CA key encrypted with a passphrase (PADDOCK_BACKUP_PASSPHRASE
or --passphrase-file). Runs on the host ` + "`paddock up`" + ` started
ZooKeeper from (it uses ZooKeeper's super user from the state dir).
` + "`paddock up`" + ` also keeps a daily copy of ZooKeeper's state (without
the CA) in <state-dir>/backups.`,
		Args: cobra.ExactArgs(1),
	}
	if restore {
		c.Use = "restore FILE"
		c.Short = "Bring an empty ZooKeeper (standalone or ensemble) back to a backup, and the CA to the state dir"
		c.Long = `Writes a backup's znodes into a ZooKeeper that holds no platform (--force
replaces one), with their original ACLs, and puts the CA back in the
state dir when the passphrase is given. The agents reconnect on their
own: their sessions expire, they re-register, and the deployments keep
their containers. See the README, "Lost ZooKeeper quorum".`
	}
	f := c.Flags()
	f.String("passphrase-file", "", "file holding the passphrase of the CA key (else PADDOCK_BACKUP_PASSPHRASE)")
	f.Bool("without-ca", false, "leave the CA out (the backup then holds ZooKeeper's state alone)")
	if restore {
		f.Bool("force", false, "replace an existing platform tree and differing CA files")
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		v := app.V
		pass, err := platform.Passphrase(v.GetString("passphrase-file"))
		if err != nil {
			return err
		}
		cfg := platform.BackupConfig{StateDir: app.StateDir(), ZooKeeper: v.GetString("zk"), TLS: v.GetBool("zk-tls"),
			Passphrase: pass, WithoutCA: v.GetBool("without-ca"), Force: restore && v.GetBool("force"),
			Timeout: v.GetDuration("timeout"), Logger: app.Log}
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
		defer cancel()
		run := platform.BackupToFile
		if restore {
			run = platform.RestoreFromFile
		}
		res, err := run(ctx, cfg, args[0])
		if err != nil {
			return err
		}
		return app.output(res, func() { fmt.Fprint(app.Out, res.Text()) })
	}
	return c
}
