package client

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"paddock/agents/constructor"
	"paddock/engine"
	"paddock/engine/service"
)

// The text forms of the API's answers: what the CLI prints when -o json
// is not asked for (with it, the CLI prints the raw JSON the calls
// return). One function per answer, writing to w.

// stepColumn is the width of the step name column of tracked plans and
// activity: the longest step name the constructor writes.
var stepColumn = len(constructor.StepWait)

// WriteStep writes one plan step: when it last changed, its name, its
// status and message.
func WriteStep(w io.Writer, st engine.PlanStep) {
	ts := st.Started
	if st.Ended != nil {
		ts = *st.Ended
	}
	// The column fits the longest step name the constructor writes; a
	// longer one still keeps two spaces before its status.
	line := fmt.Sprintf("  %s  %-*s  %s", ts.Local().Format("15:04:05"), stepColumn, st.Name, st.Status)
	if st.Message != "" {
		line += "  " + st.Message
	}
	if st.Status == engine.PlanRunning && st.Waiting != "" {
		line += "  " + st.Waiting
	}
	if st.Blocked(time.Now()) {
		line += fmt.Sprintf("  BLOCKED: past its deadline (%s)", st.Deadline.Local().Format("15:04:05"))
	}
	fmt.Fprintln(w, line)
}

// WritePlanResult says which plan a long operation wrote.
func WritePlanResult(w io.Writer, res service.PlanResult) {
	if res.PlanID == "" {
		fmt.Fprintf(w, "deployment %s: nothing to change\n", res.DeploymentID)
		return
	}
	fmt.Fprintf(w, "deployment %s: plan %s written\n", res.DeploymentID, res.PlanID)
}

// WriteCreateResult says what a create did: checked only (with its
// placement), created, or found created by the same request id.
func WriteCreateResult(w io.Writer, res service.CreateResult, validateOnly bool, requestID string) {
	switch {
	case validateOnly:
		fmt.Fprintln(w, "validate only: the deployment fits; nothing was written")
		WritePlacement(w, res.Placement)
	case res.Created:
		fmt.Fprintf(w, "deployment %s created (plan %s)\n", res.Deployment.ID, res.PlanID)
		if c := res.Credentials; c != nil {
			WriteCredentials(w, c.Username, c.Password)
		}
	default:
		fmt.Fprintf(w, "deployment %s already created by request %s (plan %s)\n", res.Deployment.ID, requestID, res.PlanID)
	}
}

// newTable starts a table on w with its header: columns aligned two
// spaces apart; Flush it at the end.
func newTable(w io.Writer, header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}

func topo(t engine.Topology) string {
	if t.SizeMB == 0 {
		return "-"
	}
	return fmt.Sprintf("%s x %d", engine.FormatSize(t.SizeMB), t.Zones)
}

// WriteDeployments writes the deployments table.
func WriteDeployments(w io.Writer, deps []service.DeploymentView) {
	tw := newTable(w, "ID\tNAME\tSTATUS\tVERSION\tELASTICSEARCH\tKIBANA\tPLAN\tHEALTH")
	for _, d := range deps {
		s := d.DesiredSpec()
		plan := d.LastPlanStatus
		if d.PendingPlan != nil {
			plan = d.PendingPlan.Action + " " + d.PendingPlan.Status
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Name, d.Status, s.Version, topo(s.Elasticsearch), topo(s.Kibana), plan,
			HealthWord(d.Health))
	}
	tw.Flush()
}

// WriteDeployment writes one deployment and its instances.
func WriteDeployment(w io.Writer, d service.DeploymentView) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	s := d.DesiredSpec()
	fmt.Fprintf(tw, "ID\t%s\n", d.ID)
	fmt.Fprintf(tw, "Name\t%s\n", d.Name)
	fmt.Fprintf(tw, "Status\t%s\n", d.Status)
	fmt.Fprintf(tw, "Version\t%s\n", s.Version)
	fmt.Fprintf(tw, "Elasticsearch\t%s\n", topo(s.Elasticsearch))
	fmt.Fprintf(tw, "Kibana\t%s\n", topo(s.Kibana))
	fmt.Fprintf(tw, "Endpoint\t%s\n", d.Endpoint)
	fmt.Fprintf(tw, "Traffic filters\t%s\n", FiltersLine(d.TrafficFilters))
	fmt.Fprintf(tw, "Resource version\t%d\n", d.ResourceVersion)
	if d.PendingPlan != nil {
		fmt.Fprintf(tw, "Pending plan\t%s %s (%s)\n", d.PendingPlan.ID, d.PendingPlan.Action, d.PendingPlan.Status)
	}
	if d.LastPlanID != "" {
		fmt.Fprintf(tw, "Last plan\t%s %s\n", d.LastPlanID, d.LastPlanStatus)
	}
	if d.Security != nil {
		fmt.Fprintf(tw, "Password\t%s\n", PasswordState(d.Security))
	}
	fmt.Fprintf(tw, "Health\t%s\n", HealthLine(d.Health))
	if d.Health != nil && d.Health.LastChange != "" {
		fmt.Fprintf(tw, "Replication\tterm %d: %s (%s)\n", d.Health.Term, d.Health.LastChange, d.Health.Updated.Format(time.RFC3339))
	}
	tw.Flush()
	if len(d.Instances) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w, "INSTANCE\tKIND\tALLOCATOR\tZONE\tSIZE\tVERSION\tCOPY")
		for _, in := range d.Instances {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", in.ID, in.Kind, in.Allocator, in.Zone, engine.FormatSize(in.SizeMB), in.Version,
				CopyState(d.Health, in.ID))
		}
		tw.Flush()
	}
}

// HealthWord is a deployment's health in one word ("-" before its
// nodes were first made healthy).
func HealthWord(h *service.HealthView) string {
	if h == nil {
		return "-"
	}
	return h.Health
}

// HealthLine is the health with what is missing.
func HealthLine(h *service.HealthView) string {
	if h == nil {
		return "unknown (no replication routing yet)"
	}
	if h.Reason == "" {
		return h.Health
	}
	return h.Health + ": " + h.Reason
}

// CopyState is an instance's place in the replication group ("-" for
// an instance that is no copy).
func CopyState(h *service.HealthView, iid string) string {
	if h == nil {
		return "-"
	}
	for _, c := range h.Copies {
		if c.ID != iid {
			continue
		}
		role, sync := "replica", "recovering"
		if c.Primary {
			role = "primary"
		}
		if c.InSync {
			sync = "in sync"
		}
		if !c.Running {
			sync += ", not running"
		}
		return role + " (" + sync + ")"
	}
	return "-"
}

// WriteActivity writes a deployment's plans, history first, each with
// its steps.
func WriteActivity(w io.Writer, a service.Activity) {
	plans := append([]engine.Plan(nil), a.History...)
	if a.Pending != nil {
		plans = append(plans, *a.Pending)
	}
	if a.Security != nil {
		fmt.Fprintf(w, "password: %s\n", PasswordState(a.Security))
	}
	if len(plans) == 0 {
		fmt.Fprintln(w, "no plans")
		return
	}
	for _, p := range plans {
		fmt.Fprintf(w, "plan %s  %s  %s  created %s by %s\n", p.ID, p.Action, p.Status, p.CreatedAt.Local().Format("2006-01-02 15:04:05"), p.CreatedBy)
		for _, st := range p.Steps {
			WriteStep(w, st)
		}
	}
}

// WritePlacement writes a placement preview and, when asked, why each
// allocator was or was not feasible.
func WritePlacement(w io.Writer, rep *service.PlacementReport) {
	if rep == nil {
		return
	}
	tw := newTable(w, "KIND\tALLOCATOR\tZONE\tSIZE")
	for _, p := range rep.Placements {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Kind, p.Allocator, p.Zone, engine.FormatSize(p.SizeMB))
	}
	tw.Flush()
	if len(rep.Explain) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w, "KIND\tALLOCATOR\tZONE\tFEASIBLE\tREASON")
		for _, v := range rep.Explain {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", v.Kind, v.Allocator, v.Zone, v.Feasible, strings.TrimSpace(v.Reason))
		}
		tw.Flush()
	}
}

// WriteVacate says, per deployment, which move plan a vacate wrote or
// why it could not.
func WriteVacate(w io.Writer, res service.VacateResult) {
	if len(res.Moves) == 0 {
		fmt.Fprintf(w, "allocator %s runs no instances: nothing to move\n", res.Allocator)
	}
	for _, m := range res.Moves {
		if m.ErrorMessage != "" {
			fmt.Fprintf(w, "deployment %s: not moved: %s\n", m.DeploymentID, m.ErrorMessage)
		} else {
			fmt.Fprintf(w, "deployment %s: move plan %s written\n", m.DeploymentID, m.PlanID)
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteAllocators writes the allocators table.
func WriteAllocators(w io.Writer, as []service.AllocatorView) {
	tw := newTable(w, "ZONE\tID\tHOST\tCAPACITY\tFREE\tINSTANCES\tCONNECTED\tMAINTENANCE")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.Zone, a.ID, a.Host, engine.FormatSize(a.CapacityMB), engine.FormatSize(a.FreeMB),
			len(a.Instances), yesNo(a.Connected), yesNo(a.Maintenance))
	}
	tw.Flush()
}

// WriteAllocator writes one allocator's row and its instances.
func WriteAllocator(w io.Writer, a service.AllocatorView) {
	WriteAllocators(w, []service.AllocatorView{a})
	if len(a.Instances) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := newTable(w, "INSTANCE\tDEPLOYMENT\tKIND\tSIZE\tVERSION\tSTATE\tHEALTHY\tRESTARTS")
	for _, in := range a.Instances {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", in.ID, in.DeploymentID, in.Kind, engine.FormatSize(in.SizeMB), in.Version, in.State, yesNo(in.Healthy), in.Restarts)
	}
	tw.Flush()
}

// WriteMaintenance says whether allocator a is in maintenance.
func WriteMaintenance(w io.Writer, a service.AllocatorView) {
	state := "off"
	if a.Maintenance {
		state = "on"
	}
	fmt.Fprintf(w, "allocator %s: maintenance %s\n", a.ID, state)
}

// WriteCapacity says allocator a's capacity.
func WriteCapacity(w io.Writer, a service.AllocatorView) {
	fmt.Fprintf(w, "allocator %s: capacity %s\n", a.ID, engine.FormatSize(a.CapacityMB))
}

// VacateFailures is the error of a vacate that could not move every
// deployment off the allocator (nil when it moved them all).
func VacateFailures(res service.VacateResult) error {
	failed := 0
	for _, m := range res.Moves {
		if m.ErrorMessage != "" {
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("%d deployment(s) could not be moved off %s", failed, res.Allocator)
}

// WriteKeys writes the table of API keys and users (never secrets).
func WriteKeys(w io.Writer, keys []service.APIKeyInfo) error {
	tw := newTable(w, "ID\tKIND\tNAME\tROLE\tCREATED")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Kind, k.Name, k.Role, k.CreatedAt.Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

// WriteDoctor prints the doctor's checks, worst first: severity, what
// was checked, what was found, the items concerned and what to do.
func WriteDoctor(w io.Writer, r service.DoctorReport) {
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%-8s  %s\n", strings.ToUpper(c.Severity), c.Title)
		fmt.Fprintf(w, "          %s\n", c.Detail)
		for _, it := range c.Items {
			fmt.Fprintf(w, "          - %s\n", it)
		}
		if c.Action != "" {
			fmt.Fprintf(w, "          what to do: %s\n", c.Action)
		}
	}
	fmt.Fprintf(w, "status: %s (%d checks)\n", r.Status, len(r.Checks))
}

// WriteCredentials shows a deployment's credentials, the one time they
// are shown.
func WriteCredentials(w io.Writer, user, password string) {
	fmt.Fprintf(w, "username: %s\npassword: %s\n(shown once: store it now; `paddock deployment reset-password ID` issues a new one)\n", user, password)
}

// PasswordState says whether the elastic password was ever reset (never
// the password itself).
func PasswordState(s *service.SecurityView) string {
	if s == nil {
		return "-"
	}
	if !s.PasswordReset || s.ResetAt == nil {
		return s.Username + ", set at creation, never reset"
	}
	return fmt.Sprintf("%s, reset %d time(s), last %s", s.Username, s.Resets, s.ResetAt.Local().Format("2006-01-02 15:04:05"))
}
