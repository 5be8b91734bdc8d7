package client

import (
	"context"
	"fmt"
	"io"
	"strings"

	"paddock/agents/api"
	"paddock/engine"
	"paddock/engine/service"
)

const filterPath = "/deployments/traffic-filter/rulesets"

// ListTrafficFilters lists traffic filter rule sets.
func (c *Client) ListTrafficFilters(ctx context.Context) (api.TrafficFilterList, []byte, error) {
	return call[api.TrafficFilterList](ctx, c, "GET", filterPath, nil, nil)
}

// CreateTrafficFilter creates a rule set.
func (c *Client) CreateTrafficFilter(ctx context.Context, b api.TrafficFilterBody) (service.TrafficFilterView, []byte, error) {
	return call[service.TrafficFilterView](ctx, c, "POST", filterPath, b, nil)
}

// AttachTrafficFilter attaches rule set id to a deployment.
func (c *Client) AttachTrafficFilter(ctx context.Context, id, deployment string) (service.TrafficFilterView, []byte, error) {
	return call[service.TrafficFilterView](ctx, c, "POST", filterPath+"/"+esc(id)+"/associations",
		api.AssociationBody{EntityType: engine.AssociationDeployment, ID: deployment}, nil)
}

// DetachTrafficFilter detaches rule set id from a deployment.
func (c *Client) DetachTrafficFilter(ctx context.Context, id, deployment string) (service.TrafficFilterView, []byte, error) {
	return call[service.TrafficFilterView](ctx, c, "DELETE", filterPath+"/"+esc(id)+"/associations/deployment/"+esc(deployment), nil, nil)
}

// DeleteTrafficFilter deletes a rule set (ignoreAssociations: even if
// attached).
func (c *Client) DeleteTrafficFilter(ctx context.Context, id string, ignoreAssociations bool) (map[string]string, []byte, error) {
	q := ""
	if ignoreAssociations {
		q = "?ignore_associations=true"
	}
	return call[map[string]string](ctx, c, "DELETE", filterPath+"/"+esc(id)+q, nil, nil)
}

// FilterBody builds a rule set body from CLI-style sources
// ("10.0.0.0/8" or "10.0.0.0/8=VPN" with a description).
func FilterBody(name, description string, sources []string, byDefault bool) api.TrafficFilterBody {
	b := api.TrafficFilterBody{Name: name, Description: description, IncludeByDefault: byDefault, Rules: []engine.TrafficFilterRule{}}
	for _, s := range sources {
		src, desc, _ := strings.Cut(s, "=")
		b.Rules = append(b.Rules, engine.TrafficFilterRule{Source: strings.TrimSpace(src), Description: desc})
	}
	return b
}

// WriteTrafficFilters writes rule sets as a table.
func WriteTrafficFilters(w io.Writer, l api.TrafficFilterList) {
	tw := newTable(w, "ID\tNAME\tSOURCES\tDEPLOYMENTS")
	for _, r := range l.Rulesets {
		var srcs, deps []string
		for _, x := range r.Rules {
			srcs = append(srcs, x.Source)
		}
		for _, a := range r.Associations {
			deps = append(deps, a.ID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, r.Name, strings.Join(srcs, ","), orDash(strings.Join(deps, ",")))
	}
	tw.Flush()
}

// WriteTrafficFilter writes one rule set.
func WriteTrafficFilter(w io.Writer, r service.TrafficFilterView) {
	WriteTrafficFilters(w, api.TrafficFilterList{Rulesets: []service.TrafficFilterView{r}})
}

// FiltersLine says how a deployment's traffic is filtered.
func FiltersLine(ids []string) string {
	if len(ids) == 0 {
		return "none (open to every source)"
	}
	return strings.Join(ids, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
