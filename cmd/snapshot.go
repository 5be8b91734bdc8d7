package cmd

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/api"
	"paddock/agents/api/client"
	"paddock/engine"
	"paddock/engine/service"
)

// newRepositoryCmd: `paddock repository add|list|remove` (snapshot
// repositories; behaviour in agents/api/client/snapshots.go).
func newRepositoryCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "repository", Aliases: []string{"repositories", "repo"}, Short: "Snapshot repositories: where deployments' snapshots go (S3-compatible object store or shared directory)"}
	addAPIClientFlags(c, true)
	v := app.V
	var body api.RepositoryBody
	add := &cobra.Command{Use: "add NAME", Short: "Add or replace a repository: --type s3 --endpoint http://H:P --bucket B --access-key K --secret-key-file F, or --type fs --path /shared/dir",
		Args: cobra.ExactArgs(1),
		RunE: apiCall[service.RepositoryView]{
			check: func([]string) error {
				var err error
				body, err = client.RepositoryFromFlags(v.GetString("type"), v.GetString("endpoint"), v.GetString("bucket"), v.GetString("region"),
					v.GetString("access-key"), v.GetString("secret-key-file"), v.GetString("path"))
				if err != nil {
					return usageErr("%v", err)
				}
				return nil
			},
			call: func(ctx context.Context, cl *client.Client, a []string) (service.RepositoryView, []byte, error) {
				return cl.PutRepository(ctx, a[0], body)
			},
			text: client.WriteRepository,
		}.runE(app)}
	af := add.Flags()
	af.String("type", "s3", "s3 (an S3-compatible object store) or fs (a directory shared by every allocator host, their --snapshot-dir)")
	af.String("endpoint", "", "s3: the object store's URL, such as http://10.0.0.5:8333")
	af.String("bucket", "", "s3: the bucket")
	af.String("region", "", "s3: the region (default us-east-1)")
	af.String("access-key", "", "s3: the access key")
	af.String("secret-key-file", "", "s3: a file holding the secret key (- reads standard input); never a flag, so it stays out of shell history")
	af.String("path", "", "fs: the shared directory")
	list := &cobra.Command{Use: "list", Short: "List repositories (keys are never shown)", Args: cobra.NoArgs,
		RunE: apiCall[api.RepositoryList]{call: func(ctx context.Context, cl *client.Client, _ []string) (api.RepositoryList, []byte, error) {
			return cl.ListRepositories(ctx)
		}, text: client.WriteRepositories}.runE(app)}
	remove := &cobra.Command{Use: "remove NAME", Aliases: []string{"delete"}, Short: "Remove a repository (refused while a deployment uses it; its snapshots stay in the store)", Args: cobra.ExactArgs(1),
		RunE: apiCall[map[string]any]{call: func(ctx context.Context, cl *client.Client, a []string) (map[string]any, []byte, error) {
			return cl.DeleteRepository(ctx, a[0])
		}, text: func(w io.Writer, _ map[string]any) { io.WriteString(w, "removed\n") }}.runE(app)}
	c.AddCommand(add, list, remove)
	return c
}

// newDeploymentSnapshotCmds: `paddock deployment snapshot|snapshots|
// restore|restore-status|snapshot-policy`.
func newDeploymentSnapshotCmds(app *App) []*cobra.Command {
	v := app.V
	track := func(c *cobra.Command) {
		c.Flags().Bool("track", false, "wait until it ends; exit non-zero if it failed")
		c.Flags().Duration("track-timeout", 30*time.Minute, "give up tracking after this long")
	}
	progress := func() io.Writer {
		if app.JSON() {
			return app.Err
		}
		return app.Out
	}
	trackCtx := func(cmd *cobra.Command) (context.Context, context.CancelFunc) {
		return context.WithTimeout(cmd.Context(), v.GetDuration("track-timeout"))
	}
	snapshot := &cobra.Command{Use: "snapshot ID", Short: "Take a snapshot now (--track waits for it)", Args: cobra.ExactArgs(1),
		RunE: apiCall[engine.SnapshotRecord]{call: byID((*client.Client).TakeSnapshot), text: client.WriteSnapshot,
			after: func(cmd *cobra.Command, cl *client.Client, r engine.SnapshotRecord) error {
				if !v.GetBool("track") {
					return nil
				}
				ctx, cancel := trackCtx(cmd)
				defer cancel()
				done, err := cl.TrackSnapshot(ctx, cmd.Flags().Arg(0), r.Name, 500*time.Millisecond)
				if err == nil {
					client.WriteSnapshot(progress(), done)
				}
				return apiFailure(err)
			}}.runE(app)}
	track(snapshot)
	snapshots := &cobra.Command{Use: "snapshots ID", Short: "A deployment's snapshot schedule and snapshots (status, size, duration, error)", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.SnapshotsView]{call: byID((*client.Client).ListSnapshots), text: client.WriteSnapshots}.runE(app)}
	restore := &cobra.Command{Use: "restore ID", Short: "Restore a snapshot into the deployment (--snapshot S, default the latest good one; open indices of the same name must be deleted, closed or renamed first)",
		Args: cobra.ExactArgs(1),
		RunE: apiCall[engine.RestoreRecord]{call: func(ctx context.Context, cl *client.Client, a []string) (engine.RestoreRecord, []byte, error) {
			return cl.Restore(ctx, a[0], v.GetString("snapshot"), api.RestoreBody{SourceDeployment: v.GetString("from"), Indices: v.GetString("indices"),
				RenamePattern: v.GetString("rename-pattern"), RenameReplacement: v.GetString("rename-replacement")})
		}, text: client.WriteRestore, after: func(cmd *cobra.Command, cl *client.Client, _ engine.RestoreRecord) error {
			if !v.GetBool("track") {
				return nil
			}
			ctx, cancel := trackCtx(cmd)
			defer cancel()
			done, err := cl.TrackRestore(ctx, cmd.Flags().Arg(0), 500*time.Millisecond)
			if err == nil {
				client.WriteRestore(progress(), done)
			}
			return apiFailure(err)
		}}.runE(app)}
	rf := restore.Flags()
	rf.String("snapshot", "", "the snapshot (default: the latest good one)")
	rf.String("from", "", "restore another deployment's snapshot (its id)")
	rf.String("indices", "", "indices to restore: comma-separated names or patterns (default: all)")
	rf.String("rename-pattern", "", "regular expression on restored index names (with --rename-replacement)")
	rf.String("rename-replacement", "", "replacement of --rename-pattern, such as restored-$1")
	track(restore)
	status := &cobra.Command{Use: "restore-status ID", Short: "The deployment's latest restore", Args: cobra.ExactArgs(1),
		RunE: apiCall[engine.RestoreRecord]{call: byID((*client.Client).GetRestore), text: client.WriteRestore}.runE(app)}
	var pol api.SnapshotPolicyBody
	policy := &cobra.Command{Use: "snapshot-policy ID", Short: "Change the snapshot schedule: --snapshot-interval 1h, --keep-last N, --keep-daily-days D, --repository R, --disable/--enable",
		Args: cobra.ExactArgs(1),
		RunE: apiCall[engine.SnapshotPolicy]{
			check: func([]string) error {
				var err error
				pol, err = policyFromFlags(v.GetString("snapshot-interval"))
				if err != nil {
					return err
				}
				if v.IsSet("repository") {
					r := v.GetString("repository")
					pol.Repository = &r
				}
				if n := v.GetInt("keep-last"); n != 0 {
					pol.KeepLast = &n
				}
				if n := v.GetInt("keep-daily-days"); n != 0 {
					pol.KeepDailyDays = &n
				}
				if v.GetBool("disable") || v.GetBool("enable") {
					off := v.GetBool("disable")
					pol.Disabled = &off
				}
				return nil
			},
			call: func(ctx context.Context, cl *client.Client, a []string) (engine.SnapshotPolicy, []byte, error) {
				return cl.SetSnapshotPolicy(ctx, a[0], pol)
			},
			text: func(w io.Writer, p engine.SnapshotPolicy) {
				client.WriteSnapshots(w, service.SnapshotsView{Policy: p, Repository: p.RepositoryName(), Interval: p.Interval().String(), LastSuccess: nil})
			}}.runE(app)}
	pf := policy.Flags()
	pf.String("snapshot-interval", "", "time between scheduled snapshots, such as 30m or 1h")
	pf.String("repository", "", "the repository (see paddock repository list)")
	pf.Int("keep-last", 0, "keep the last N successful snapshots")
	pf.Int("keep-daily-days", 0, "and the newest of each of the last D days")
	pf.Bool("disable", false, "stop scheduled snapshots (manual ones still work)")
	pf.Bool("enable", false, "resume scheduled snapshots")
	return []*cobra.Command{snapshot, snapshots, restore, status, policy}
}

// policyFromFlags reads --snapshot-interval ("" = unchanged).
func policyFromFlags(interval string) (api.SnapshotPolicyBody, error) {
	var p api.SnapshotPolicyBody
	if interval == "" {
		return p, nil
	}
	d, err := engine.ParseSnapshotInterval(interval)
	if err != nil {
		return p, usageErr("--snapshot-interval: %v", err)
	}
	secs := int(d / time.Second)
	p.IntervalSecs = &secs
	return p, nil
}
