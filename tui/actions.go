package tui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/tui/common"
	"paddock/tui/data"
)

// CreateRequest is what the create-deployment form asks for.
type CreateRequest struct {
	Name     string
	Version  string
	SizeMB   int
	Zones    int
	KibanaMB int
}

// Created is a new deployment with its elastic user's credentials,
// which the console shows once (only their hash is kept).
type Created struct {
	ID                 string
	Username, Password string
}

// Actions are the operator actions the console triggers. Production
// implements them with the engine's service functions (the API's own);
// each returns once the plan is accepted, and the screens then follow
// the plan live through the snapshot.
type Actions interface {
	CreateDeployment(ctx context.Context, req CreateRequest) (Created, error)
	ResizeDeployment(ctx context.Context, id string, sizeMB int) error
	UpgradeDeployment(ctx context.Context, id, version string) error
	RestartDeployment(ctx context.Context, id string) error
	DeleteDeployment(ctx context.Context, id string) error
	CancelPlan(ctx context.Context, id string) error
	RetryPlan(ctx context.Context, id string) error
	SetMaintenance(ctx context.Context, allocator string, on bool) error
	VacateAllocator(ctx context.Context, allocator string) error
}

// ErrReadOnly is returned by NoActions.
var ErrReadOnly = errors.New("actions are not available in this console (read-only): use the API or the CLI")

// NoActions is a read-only console's Actions: every action says so.
type NoActions struct{ Reason error }

func (n NoActions) err() error {
	if n.Reason != nil {
		return n.Reason
	}
	return ErrReadOnly
}

// CreateDeployment implements Actions.
func (n NoActions) CreateDeployment(context.Context, CreateRequest) (Created, error) {
	return Created{}, n.err()
}

// ResizeDeployment implements Actions.
func (n NoActions) ResizeDeployment(context.Context, string, int) error { return n.err() }

// UpgradeDeployment implements Actions.
func (n NoActions) UpgradeDeployment(context.Context, string, string) error { return n.err() }

// RestartDeployment implements Actions.
func (n NoActions) RestartDeployment(context.Context, string) error { return n.err() }

// DeleteDeployment implements Actions.
func (n NoActions) DeleteDeployment(context.Context, string) error { return n.err() }

// CancelPlan implements Actions.
func (n NoActions) CancelPlan(context.Context, string) error { return n.err() }

// RetryPlan implements Actions.
func (n NoActions) RetryPlan(context.Context, string) error { return n.err() }

// SetMaintenance implements Actions.
func (n NoActions) SetMaintenance(context.Context, string, bool) error { return n.err() }

// VacateAllocator implements Actions.
func (n NoActions) VacateAllocator(context.Context, string) error { return n.err() }

// Permissions say what this console may do. The console checks them
// before it asks for a confirmation, so a refused action says why at
// once; the API applies the same role table (service.RoleAllows).
type Permissions struct {
	// ReadOnly is `paddock console --read-only`: no action at all.
	ReadOnly bool
	// Role is the role of the API key the console acts with; "" when
	// the operator runs it with the platform's admin credential (every
	// action).
	Role string
	// Who names that key or user in messages ("key oncall").
	Who string
}

// Check says why an action needing a is refused, or nil.
func (p Permissions) Check(a service.Access) error {
	if p.ReadOnly {
		return errors.New("this console is read-only (--read-only): run it without --read-only, or use the CLI")
	}
	if p.Role == "" || service.RoleAllows(p.Role, a) {
		return nil
	}
	who := ""
	if p.Who != "" {
		who = " (" + p.Who + ")"
	}
	return fmt.Errorf("role %s%s may not: this needs %s access (%s)", p.Role, who, a, strings.Join(service.RolesAllowed(a), " or "))
}

// Badge is the tab line's mark of a restricted console ("" when not).
func (p Permissions) Badge() string {
	switch {
	case p.ReadOnly:
		return "read-only"
	case p.Role != "" && !service.RoleAllows(p.Role, service.AccessDeployments):
		return "view only: " + p.Role
	case p.Role != "" && !service.RoleAllows(p.Role, service.AccessPlatform):
		return p.Role
	}
	return ""
}

// op is one operator action as the console offers it: what it does in
// words, the access it needs, the same action as a CLI command (shown
// in its confirmation and copied with ctrl+y), and the call.
type op struct {
	// What names the action and its target: "delete logs-prod".
	What string
	// Message is the confirmation: what will happen, in full.
	Message string
	Access  service.Access
	CLI     string
	// Typed, when set, must be typed to confirm (cancel, delete).
	Typed string
	Run   func(ctx context.Context) actionDone
}

// refuse reports a refused action on the status line.
func refuse(what string, err error) tea.Cmd {
	return func() tea.Msg { return common.ErrorMsg{Err: fmt.Errorf("cannot %s: %w", what, err)} }
}

// confirmOp opens the confirmation of o, or says why it is refused.
func (a *App) confirmOp(o op) tea.Cmd {
	if err := a.perm.Check(o.Access); err != nil {
		return refuse(o.What, err)
	}
	if o.Typed != "" {
		return a.open(newTypedConfirm(a.c, o))
	}
	return a.open(newConfirm(a.c, o))
}

// cli quotes one argument of a shown command when it needs it.
func cli(parts ...string) string {
	out := make([]string, len(parts))
	for i, p := range parts {
		if p == "" || strings.ContainsAny(p, " \t'\"$\\;&|<>*?()") {
			p = "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
		}
		out[i] = p
	}
	return "paddock " + strings.Join(out, " ")
}

// Deployment actions.

func (a *App) createDeployment() tea.Cmd {
	if err := a.perm.Check(service.AccessDeployments); err != nil {
		return refuse("create a deployment", err)
	}
	versions := a.snap.Platform.Versions
	if len(versions) == 0 {
		versions = engine.DefaultVersions
	}
	return a.open(newCreateForm(a.c, versions, len(a.snap.Zones), a.actions))
}

func (a *App) resize(x data.Deployment) tea.Cmd {
	what := "resize " + x.Name
	if err := a.perm.Check(service.AccessDeployments); err != nil {
		return refuse(what, err)
	}
	act, id, name := a.actions, x.ID, x.Name
	cur := x.Spec.Elasticsearch.SizeMB
	return a.open(newPrompt(a.c, "Resize "+name, "Memory per Elasticsearch instance (now "+size(cur)+"), such as 2g or 512m. A grow-and-shrink plan moves the data.",
		size(cur), func(v string) error {
			mb, err := engine.ParseSize(v)
			if err != nil {
				return err
			}
			if mb < 256 {
				return fmt.Errorf("at least 256m")
			}
			return nil
		}, func(v string) string {
			if mb, err := engine.ParseSize(v); err == nil {
				v = engine.FormatSize(mb)
			}
			return cli("deployment", "resize", id, "--size", v)
		}, func(ctx context.Context, v string) actionDone {
			mb, _ := engine.ParseSize(v)
			return actionDone{What: "resize " + name + " to " + size(mb), DeploymentID: id, Err: act.ResizeDeployment(ctx, id, mb)}
		}))
}

func (a *App) upgrade(x data.Deployment) tea.Cmd {
	what := "upgrade " + x.Name
	if err := a.perm.Check(service.AccessDeployments); err != nil {
		return refuse(what, err)
	}
	act, id, name := a.actions, x.ID, x.Name
	versions := a.snap.Platform.Versions
	return a.open(newPrompt(a.c, "Upgrade "+name, "Version (now "+x.Spec.Version+"; offered: "+strings.Join(versions, ", ")+").",
		newest(versions), func(v string) error {
			if len(versions) > 0 && !slices.Contains(versions, v) {
				return fmt.Errorf("version %s is not offered: use one of %s", v, strings.Join(versions, ", "))
			}
			return nil
		}, func(v string) string {
			return cli("deployment", "upgrade", id, "--version", v)
		}, func(ctx context.Context, v string) actionDone {
			return actionDone{What: "upgrade " + name + " to " + v, DeploymentID: id, Err: act.UpgradeDeployment(ctx, id, v)}
		}))
}

func (a *App) restart(x data.Deployment) tea.Cmd {
	act, id, name := a.actions, x.ID, x.Name
	return a.confirmOp(op{
		What:    "restart " + name,
		Message: "Restart every instance of " + name + " (" + itoa(len(x.Members)) + " instances)? They restart one zone at a time; the deployment stays available if it runs in more than one zone.",
		Access:  service.AccessDeployments,
		CLI:     cli("deployment", "restart", id),
		Run: func(ctx context.Context) actionDone {
			return actionDone{What: "restart " + name, DeploymentID: id, Err: act.RestartDeployment(ctx, id)}
		},
	})
}

func (a *App) deleteDeployment(x data.Deployment) tea.Cmd {
	act, id, name := a.actions, x.ID, x.Name
	return a.confirmOp(op{
		What:    "delete " + name,
		Message: "Delete " + name + " (" + id + ")? Its " + itoa(len(x.Members)) + " instances, their data and its route are removed. This cannot be undone.",
		Access:  service.AccessDeployments,
		CLI:     cli("deployment", "delete", id),
		Typed:   name,
		Run: func(ctx context.Context) actionDone {
			return actionDone{What: "delete " + name, DeploymentID: id, Err: act.DeleteDeployment(ctx, id)}
		},
	})
}

func (a *App) cancelPlan(x data.Deployment) tea.Cmd {
	act, id, name := a.actions, x.ID, x.Name
	if x.Pending == nil {
		return func() tea.Msg { return common.FlashMsg{Text: name + " has no running plan to cancel"} }
	}
	p := x.Pending
	step := "before its first step"
	if n := len(p.Steps); n > 0 {
		step = "at step " + p.Steps[n-1].Name
	}
	if bs, ok := blockedStep(p, a.c.Now()); ok {
		step = "blocked at step " + bs.Name + " for " + common.Age(a.c.Now().Sub(*bs.Deadline)) + " past its deadline"
		if bs.Waiting != "" {
			step += ": " + bs.Waiting
		}
	}
	return a.confirmOp(op{
		What: "cancel the " + p.Action + " plan of " + name,
		Message: "Cancel the running " + p.Action + " plan " + p.ID + " of " + name + " (" + step + ")? The constructor stops it and rolls back to the last good topology; " +
			"the old route stays. You can retry it afterwards.",
		Access: service.AccessDeployments,
		CLI:    cli("deployment", "cancel", id),
		Typed:  name,
		Run: func(ctx context.Context) actionDone {
			return actionDone{What: "cancel plan of " + name, DeploymentID: id, Err: act.CancelPlan(ctx, id)}
		},
	})
}

func (a *App) retryPlan(x data.Deployment) tea.Cmd {
	act, id, name := a.actions, x.ID, x.Name
	switch {
	case x.Pending != nil:
		return func() tea.Msg {
			return common.FlashMsg{Text: name + " is running a plan (" + x.Pending.Action + "): wait for it or cancel it (x) before a retry"}
		}
	case !service.Retryable(x.LastPlan):
		return func() tea.Msg { return common.FlashMsg{Text: name + " has no failed plan to retry"} }
	}
	p := x.LastPlan
	return a.confirmOp(op{
		What: "retry the " + p.Action + " plan of " + name,
		Message: "Retry the " + p.Action + " plan of " + name + " that ended " + p.Status + " (" + p.ID + ")? A new plan asks for the same " +
			specWords(p.Spec) + "; the console follows it step by step.",
		Access: service.AccessDeployments,
		CLI:    cli("deployment", "retry", id),
		Run: func(ctx context.Context) actionDone {
			return actionDone{What: "retry plan of " + name, DeploymentID: id, Err: act.RetryPlan(ctx, id)}
		},
	})
}

// specWords says a spec the way the confirmation reads it.
func specWords(s engine.DeploymentSpec) string {
	out := "version " + s.Version + ", " + size(s.Elasticsearch.SizeMB) + " in " + itoa(s.Elasticsearch.Zones) + " zone"
	if s.Elasticsearch.Zones != 1 {
		out += "s"
	}
	return out
}

// Allocator actions.

func (a *App) maintenance(al data.Allocator) tea.Cmd {
	act, id := a.actions, al.ID
	on := !al.Maintenance
	o := op{
		What:    "maintenance on " + id,
		Message: "Turn maintenance ON for " + id + " (" + al.Zone + ")? No new instance is placed on it; its " + itoa(len(al.Instances)) + " instances keep running.",
		Access:  service.AccessPlatform,
		CLI:     cli("allocator", "maintenance", id, "--on"),
	}
	if !on {
		o.What = "maintenance off " + id
		o.Message = "Turn maintenance OFF for " + id + " (" + al.Zone + ")? It takes new instances again."
		o.CLI = cli("allocator", "maintenance", id, "--off")
	}
	what := o.What
	o.Run = func(ctx context.Context) actionDone {
		return actionDone{What: what, Err: act.SetMaintenance(ctx, id, on)}
	}
	return a.confirmOp(o)
}

func (a *App) vacate(al data.Allocator) tea.Cmd {
	act, id := a.actions, al.ID
	deps := map[string]bool{}
	for _, in := range al.Instances {
		deps[in.DeploymentID] = true
	}
	what := "vacate " + id
	dry := ""
	if v := vacateWords(a.c, &a.snap, a.hr, id); v != "" {
		dry = "\nThe placement dry-run: " + ansi.Strip(v)
	}
	return a.confirmOp(op{
		What: what,
		Message: "Vacate " + id + " (" + al.Zone + ")? Its " + itoa(len(al.Instances)) + " instances of " + itoa(len(deps)) +
			" deployments move to other allocators: one move plan per deployment, followed on the Plans screen." + dry,
		Access: service.AccessPlatform,
		CLI:    cli("allocator", "vacate", id),
		Run: func(ctx context.Context) actionDone {
			return actionDone{What: what, ShowPlans: true, Err: act.VacateAllocator(ctx, id)}
		},
	})
}
