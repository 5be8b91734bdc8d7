package cmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"paddock/agents/api"
	"paddock/agents/api/client"
	"paddock/engine"
	"paddock/engine/service"
)

// newDeploymentCmd: `paddock deployment …`, the API's client for
// deployments. Every verb is one API call (apiCall); --track follows
// the plan.
func newDeploymentCmd(app *App) *cobra.Command {
	c := &cobra.Command{Use: "deployment", Aliases: []string{"deployments", "dep"}, Short: "Create and manage deployments (through the API)"}
	addAPIClientFlags(c, true)
	v := app.V

	create := newDeploymentCreateCmd(app)
	list := &cobra.Command{Use: "list", Short: "List deployments", Args: cobra.NoArgs,
		RunE: apiCall[api.DeploymentList]{
			call: func(ctx context.Context, cl *client.Client, _ []string) (api.DeploymentList, []byte, error) {
				return cl.ListDeployments(ctx, v.GetBool("all"))
			},
			text: func(w io.Writer, l api.DeploymentList) { client.WriteDeployments(w, l.Deployments) },
		}.runE(app)}
	list.Flags().Bool("all", false, "include deleted deployments")

	show := &cobra.Command{Use: "show ID", Short: "Show a deployment (--generate-update-payload prints a body for `update -f`)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !v.GetBool("generate-update-payload") {
				return apiCall[service.DeploymentView]{call: byID((*client.Client).GetDeployment), text: client.WriteDeployment}.runE(app)(cmd, args)
			}
			cl, err := app.apiClient()
			if err != nil {
				return err
			}
			ctx, cancel := app.apiContext(cmd)
			defer cancel()
			d, _, err := cl.GetDeployment(ctx, args[0])
			if err != nil {
				return apiFailure(err)
			}
			spec, name, ver := d.DesiredSpec(), d.Name, d.ResourceVersion
			return app.PrintJSON(api.UpdateDeploymentBody{Name: &name, Version: &ver, Spec: &spec})
		}}
	show.Flags().Bool("generate-update-payload", false, "print the update body (name, resource version, desired spec) that `paddock deployment update ID -f FILE` accepts")

	update, resize, upgrade, del, restart := newDeploymentPlanCmds(app)
	retry := &cobra.Command{Use: "retry ID", Short: "Retry the last plan when it failed, was rolled back or cancelled (same action and spec)", Args: cobra.ExactArgs(1),
		RunE: planCall(app, nil, byID((*client.Client).RetryPlan)).runE(app)}
	addTrackFlags(retry)

	cancelCmd := &cobra.Command{Use: "cancel ID", Short: "Cancel the pending plan (the constructor stops and rolls back)", Args: cobra.ExactArgs(1),
		Long: `Cancel the pending plan: the constructor stops at its next step and rolls back to the
topology the deployment had before (a restart or delete plan just stops).

Once a plan that moves data has handed the primary over to one of its new nodes, there is no
safe way back: a cancel is then ignored (the constructor logs it) and the plan completes.
Follow it with 'paddock deployment activity ID'.`,
		RunE: apiCall[api.CancelResponse]{call: byID((*client.Client).CancelPlan), text: func(w io.Writer, res api.CancelResponse) {
			fmt.Fprintf(w, "cancel requested for plan %s of %s\n", res.PlanID, res.DeploymentID)
		}}.runE(app)}
	activity := &cobra.Command{Use: "activity ID", Short: "Plan steps of a deployment, live and history", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.Activity]{call: byID((*client.Client).Activity), text: client.WriteActivity}.runE(app)}

	resetPassword := &cobra.Command{Use: "reset-password ID", Short: "Issue a new password for the deployment's elastic user (shown once)", Args: cobra.ExactArgs(1),
		RunE: apiCall[service.ResetPasswordResult]{call: byID((*client.Client).ResetPassword), text: func(w io.Writer, res service.ResetPasswordResult) {
			client.WriteCredentials(w, res.Username, res.Password)
		}}.runE(app)}

	c.AddCommand(create, list, show, update, resize, upgrade, del, restart, retry, cancelCmd, activity, resetPassword, newDeploymentLogsCmd(app))
	c.AddCommand(newDeploymentSnapshotCmds(app)...)
	return c
}

// newDeploymentCreateCmd: `paddock deployment create`.
func newDeploymentCreateCmd(app *App) *cobra.Command {
	v := app.V
	var body api.CreateDeploymentBody
	create := &cobra.Command{Use: "create", Short: "Create a deployment", Args: cobra.NoArgs,
		RunE: apiCall[service.CreateResult]{
			check: func([]string) error {
				size, err := engine.ParseSize(v.GetString("size"))
				if err != nil {
					return usageErr("--size: %v", err)
				}
				kib, err := engine.ParseSize(v.GetString("kibana-size"))
				if err != nil {
					return usageErr("--kibana-size: %v", err)
				}
				if v.GetString("name") == "" {
					return usageErr("--name is required")
				}
				body = api.CreateDeploymentBody{Name: v.GetString("name"), RequestID: v.GetString("request-id"), ValidateOnly: v.GetBool("validate-only"),
					Spec: engine.DeploymentSpec{Version: v.GetString("version"),
						Elasticsearch: engine.Topology{SizeMB: size, Zones: v.GetInt("zones")}, Kibana: engine.Topology{SizeMB: kib}}}
				pol, err := policyFromFlags(v.GetString("snapshot-interval"))
				if err != nil {
					return err
				}
				if pol.IntervalSecs != nil {
					body.Snapshot = &pol
				}
				body.RestoreFrom = v.GetString("restore-from")
				return nil
			},
			call: func(ctx context.Context, cl *client.Client, _ []string) (service.CreateResult, []byte, error) {
				return cl.CreateDeployment(ctx, body)
			},
			text: func(w io.Writer, res service.CreateResult) {
				client.WriteCreateResult(w, res, body.ValidateOnly, body.RequestID)
			},
			after: func(cmd *cobra.Command, cl *client.Client, res service.CreateResult) error {
				if body.ValidateOnly {
					return nil
				}
				return app.maybeTrack(cmd, cl, res.Deployment.ID, res.PlanID)
			},
		}.runE(app)}
	cf := create.Flags()
	cf.String("name", "", "deployment name (required)")
	cf.String("version", "", "stack version (default: the newest the platform offers)")
	cf.String("size", "1g", "memory per Elasticsearch instance")
	cf.Int("zones", 1, "availability zones (1..3): one Elasticsearch instance per zone")
	cf.String("kibana-size", "0", "memory of the Kibana instance (0: none)")
	cf.String("request-id", "", "idempotency key: the same id never creates a second deployment")
	cf.Bool("validate-only", false, "check and explain placement; write nothing")
	cf.String("snapshot-interval", "", "time between scheduled snapshots, such as 30m or 1h (default 30m)")
	cf.String("restore-from", "", "restore another deployment's snapshot once created: ID (its latest good snapshot) or ID/SNAPSHOT")
	addTrackFlags(create)
	return create
}

// newDeploymentPlanCmds: the verbs that write a plan (update, resize,
// upgrade, delete, restart), each followed with --track.
func newDeploymentPlanCmds(app *App) (update, resize, upgrade, del, restart *cobra.Command) {
	v := app.V
	var payload []byte
	update = &cobra.Command{Use: "update ID -f FILE", Short: "Update a deployment from a JSON body (see show --generate-update-payload; - reads stdin)", Args: cobra.ExactArgs(1),
		RunE: planCall(app, func(args []string) error {
			file := v.GetString("file")
			if file == "" {
				return usageErr("-f FILE is required (generate one with `paddock deployment show %s --generate-update-payload`)", args[0])
			}
			var err error
			if file == "-" {
				payload, err = io.ReadAll(app.In)
			} else {
				payload, err = os.ReadFile(file)
			}
			if err != nil {
				return usageErr("read %s: %v", file, err)
			}
			if !json.Valid(payload) {
				return usageErr("%s is not valid JSON", file)
			}
			return nil
		}, func(ctx context.Context, cl *client.Client, args []string) (service.PlanResult, []byte, error) {
			return cl.UpdateDeploymentRaw(ctx, args[0], json.RawMessage(payload))
		}).runE(app)}
	update.Flags().StringP("file", "f", "", "JSON body file (- for stdin)")

	var size, zones int
	resize = &cobra.Command{Use: "resize ID --size S", Short: "Change the memory of each Elasticsearch instance (and optionally the zones)", Args: cobra.ExactArgs(1),
		RunE: planCall(app, func([]string) error {
			size, zones = 0, v.GetInt("zones")
			if s := v.GetString("size"); s != "" {
				var err error
				if size, err = engine.ParseSize(s); err != nil {
					return usageErr("--size: %v", err)
				}
			}
			if size == 0 && zones == 0 {
				return usageErr("give --size and/or --zones")
			}
			return nil
		}, changeSpec(func(s *engine.DeploymentSpec) {
			if size > 0 {
				s.Elasticsearch.SizeMB = size
			}
			if zones > 0 {
				s.Elasticsearch.Zones = zones
			}
		})).runE(app)}
	resize.Flags().String("size", "", "memory per Elasticsearch instance, such as 2g")
	resize.Flags().Int("zones", 0, "availability zones (1..3); 0 keeps them")

	upgrade = &cobra.Command{Use: "upgrade ID --version V", Short: "Change the stack version", Args: cobra.ExactArgs(1),
		RunE: planCall(app, func([]string) error {
			if v.GetString("version") == "" {
				return usageErr("--version is required")
			}
			return nil
		}, changeSpec(func(s *engine.DeploymentSpec) { s.Version = v.GetString("version") })).runE(app)}
	upgrade.Flags().String("version", "", "target stack version")

	del = &cobra.Command{Use: "delete ID", Short: "Delete a deployment (its instances and route go)", Args: cobra.ExactArgs(1),
		RunE: planCall(app, nil, byID((*client.Client).DeleteDeployment)).runE(app)}
	restart = &cobra.Command{Use: "restart ID", Short: "Restart every instance of a deployment", Args: cobra.ExactArgs(1),
		RunE: planCall(app, nil, byID((*client.Client).RestartDeployment)).runE(app)}
	for _, p := range []*cobra.Command{update, resize, upgrade, del, restart} {
		addTrackFlags(p)
	}
	return update, resize, upgrade, del, restart
}

// changeSpec changes the deployment's desired spec (client.ChangeSpec).
func changeSpec(change func(*engine.DeploymentSpec)) func(context.Context, *client.Client, []string) (service.PlanResult, []byte, error) {
	return func(ctx context.Context, cl *client.Client, args []string) (service.PlanResult, []byte, error) {
		return cl.ChangeSpec(ctx, args[0], change)
	}
}

func addTrackFlags(c *cobra.Command) {
	c.Flags().Bool("track", false, "follow the plan's steps until the last one; exit non-zero if the plan failed")
	c.Flags().Duration("track-timeout", 30*time.Minute, "give up tracking after this long")
}

func (app *App) maybeTrack(cmd *cobra.Command, cl *client.Client, depID, planID string) error {
	if !app.V.GetBool("track") || planID == "" {
		return nil
	}
	// Progress goes to stderr with -o json: stdout holds the API's JSON only.
	w := app.Out
	if app.JSON() {
		w = app.Err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("track-timeout"))
	defer cancel()
	// The plan's last step decides: anything but success exits 1.
	_, err := cl.Track(ctx, depID, planID, 500*time.Millisecond, func(st engine.PlanStep) { client.WriteStep(w, st) })
	return apiFailure(err)
}
