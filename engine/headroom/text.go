package headroom

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the report for operators: one line per zone, then
// the allocators that could not be vacated.
func (r Report) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ZONE\tIF LOST\tINSTANCES\tNEEDED\tFREE ELSEWHERE\tSHORTFALL\tUNPLACEABLE\tLOST HA")
	for _, z := range r.Zones {
		verdict := "survivable"
		if !z.Survivable {
			verdict = "NOT SURVIVABLE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d MB\t%d MB\t%d MB\t%s\t%s\n", z.Zone, verdict, z.Instances, z.NeededMB, z.FreeElsewhereMB,
			z.ShortfallMB, list(z.Unplaceable), list(z.LostHA))
	}
	tw.Flush()
	for _, z := range r.Zones {
		if z.Frozen != "" {
			fmt.Fprintf(w, "%s: the constructor would freeze rescheduling (%s): vacate its allocators by hand\n", z.Zone, z.Frozen)
		}
	}
	var blocked []Allocator
	for _, a := range r.Allocators {
		if !a.Vacatable {
			blocked = append(blocked, a)
		}
	}
	if len(blocked) == 0 {
		fmt.Fprintf(w, "every allocator holding instances (%d) could be vacated\n", len(r.Allocators))
		return
	}
	fmt.Fprintf(w, "\n%d of %d allocators holding instances could not be vacated:\n", len(blocked), len(r.Allocators))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALLOCATOR\tZONE\tINSTANCES\tNEEDED\tSHORTFALL\tUNPLACEABLE\tLOST HA")
	for _, a := range blocked {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d MB\t%d MB\t%s\t%s\n", a.ID, a.Zone, a.Instances, a.NeededMB, a.ShortfallMB, list(a.Unplaceable), list(a.LostHA))
	}
	tw.Flush()
}

// list shows up to three ids and how many more.
func list(ids []string) string {
	switch {
	case len(ids) == 0:
		return "-"
	case len(ids) <= 3:
		return strings.Join(ids, ",")
	}
	return fmt.Sprintf("%s +%d more", strings.Join(ids[:3], ","), len(ids)-3)
}
