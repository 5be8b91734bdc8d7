package cmd

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"paddock/agents/api/client"
	"paddock/engine/service"
)

// apiCall is one CLI verb that calls the API: check the flags (before
// anything is asked of the API), call, print the API's JSON with -o
// json or text otherwise, then run after (tracking a plan) if set. A new
// verb is a cobra.Command whose RunE is apiCall{…}.runE(app).
type apiCall[T any] struct {
	check func(args []string) error
	call  func(ctx context.Context, cl *client.Client, args []string) (T, []byte, error)
	text  func(w io.Writer, res T)
	after func(cmd *cobra.Command, cl *client.Client, res T) error
}

func (a apiCall[T]) runE(app *App) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if a.check != nil {
			if err := a.check(args); err != nil {
				return err
			}
		}
		cl, err := app.apiClient()
		if err != nil {
			return err
		}
		ctx, cancel := app.apiContext(cmd)
		defer cancel()
		res, raw, err := a.call(ctx, cl, args)
		if err != nil {
			return apiFailure(err)
		}
		if err := app.emit(raw, func() { a.text(app.Out, res) }); err != nil {
			return err
		}
		if a.after != nil {
			return a.after(cmd, cl, res)
		}
		return nil
	}
}

// byID calls a client method that takes the verb's ID argument, such
// as byID((*client.Client).GetDeployment).
func byID[T any](m func(*client.Client, context.Context, string) (T, []byte, error)) func(context.Context, *client.Client, []string) (T, []byte, error) {
	return func(ctx context.Context, cl *client.Client, args []string) (T, []byte, error) {
		return m(cl, ctx, args[0])
	}
}

// planCall is a verb that writes a plan: it says which plan was written
// and follows it with --track.
func planCall(app *App, check func([]string) error, call func(context.Context, *client.Client, []string) (service.PlanResult, []byte, error)) apiCall[service.PlanResult] {
	return apiCall[service.PlanResult]{check: check, call: call, text: client.WritePlanResult,
		after: func(cmd *cobra.Command, cl *client.Client, res service.PlanResult) error {
			return app.maybeTrack(cmd, cl, res.DeploymentID, res.PlanID)
		}}
}
