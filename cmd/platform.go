package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/agentkit"
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
		pass := os.Getenv("PADDOCK_BACKUP_PASSPHRASE")
		if pf := v.GetString("passphrase-file"); pf != "" {
			b, err := os.ReadFile(pf)
			if err != nil {
				return usageErr("--passphrase-file: %v", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		cfg := platform.BackupConfig{StateDir: app.StateDir(), ZooKeeper: v.GetString("zk"), TLS: v.GetBool("zk-tls"),
			Passphrase: pass, WithoutCA: v.GetBool("without-ca"), Force: restore && v.GetBool("force"),
			Timeout: v.GetDuration("timeout"), Logger: app.Log}
		ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
		defer cancel()
		start := time.Now()
		if restore {
			in, err := os.Open(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			defer in.Close()
			bf, err := platform.Restore(ctx, cfg, in)
			if err != nil {
				return err
			}
			withCA := bf.Secrets != nil && !cfg.WithoutCA
			return app.emitValue(backupResult{File: args[0], Znodes: len(bf.Znodes), CA: withCA, BackupOf: bf.CreatedAt, Seconds: time.Since(start).Seconds()}, func() {
				fmt.Fprintf(app.Out, "restored %d znodes of the backup of %s in %s%s\n", len(bf.Znodes), bf.CreatedAt.Format(time.RFC3339),
					time.Since(start).Round(time.Millisecond), map[bool]string{true: " (and the CA)", false: ""}[withCA])
			})
		}
		var buf bytes.Buffer
		bf, err := platform.Backup(ctx, cfg, &buf)
		if err != nil {
			return err
		}
		if err := agentkit.WriteFileAtomic(args[0], buf.Bytes(), 0o600); err != nil {
			return err
		}
		return app.emitValue(backupResult{File: args[0], Znodes: len(bf.Znodes), Walks: bf.Walks, CA: bf.Secrets != nil, BackupOf: bf.CreatedAt, Seconds: time.Since(start).Seconds()}, func() {
			fmt.Fprintf(app.Out, "%d znodes (a consistent cut in %d walks)%s written to %s in %s\n", len(bf.Znodes), bf.Walks,
				map[bool]string{true: " and the CA, encrypted,", false: ""}[bf.Secrets != nil], args[0], time.Since(start).Round(time.Millisecond))
		})
	}
	return c
}

// backupResult is the -o json answer of backup and restore.
type backupResult struct {
	File     string    `json:"file"`
	Znodes   int       `json:"znodes"`
	Walks    int       `json:"walks,omitempty"`
	CA       bool      `json:"ca"`
	BackupOf time.Time `json:"backup_of"`
	Seconds  float64   `json:"seconds"`
}

// emitValue prints v as JSON with -o json, else runs text.
func (app *App) emitValue(v any, text func()) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return app.emit(append(b, '\n'), text)
}
