package api

import (
	"net/http"
	"strings"
	"testing"

	"paddock/engine"
	"paddock/engine/service"
	"paddock/engine/service/servicetest"
)

func TestTrafficFilterEndpoints(t *testing.T) {
	f := newFixture(t, "zone-1")
	servicetest.AddAllocator(t, f.p, "a1", "zone-1", 4096)
	var dep service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", createBody("filtered", 1024, 1)), http.StatusCreated).decode(t, &dep)
	depID := dep.Deployment.ID

	// Validation: each bad field named.
	bad := f.want(f.do(admin, "POST", filterPrefix, map[string]any{"name": "office",
		"rules": []map[string]string{{"source": "10.0.0.1/8"}, {"source": "office"}}}), http.StatusBadRequest).errBody(t)
	msg := bad.Errors[0].Message
	for _, fe := range bad.Errors[0].Fields {
		msg += "; " + fe.Field + ": " + fe.Message
	}
	for _, want := range []string{"rules[0].source", "did you mean 10.0.0.0/8", "rules[1].source", "neither an IP address nor a CIDR block"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	f.want(f.do(admin, "POST", filterPrefix, map[string]any{"name": "x", "rules": []any{}}), http.StatusBadRequest)
	f.want(f.do(admin, "POST", filterPrefix, map[string]any{"name": "x", "rules": []map[string]string{{"source": "10.0.0.0/8"}}, "bogus": 1}), http.StatusBadRequest)
	// Viewers may not create.
	f.want(f.do(service.RolePlatformViewer, "POST", filterPrefix, map[string]any{"name": "x", "rules": []map[string]string{{"source": "10.0.0.0/8"}}}), http.StatusForbidden)

	// Create, list, get.
	var rs service.TrafficFilterView
	f.want(f.do(admin, "POST", filterPrefix, TrafficFilterBody{Name: "office", Description: "HQ",
		Rules: []engine.TrafficFilterRule{{Source: "127.0.0.1"}, {Source: "10.0.0.0/8", Description: "VPN"}}}), http.StatusCreated).decode(t, &rs)
	if rs.ID == "" || rs.Type != "ip" || len(rs.Rules) != 2 || rs.Rules[0].Source != "127.0.0.1" || rs.TotalAssociations != 0 {
		t.Fatalf("created %+v", rs)
	}
	var list TrafficFilterList
	f.want(f.do(service.RolePlatformViewer, "GET", filterPrefix, nil), http.StatusOK).decode(t, &list)
	if len(list.Rulesets) != 1 || list.Rulesets[0].ID != rs.ID {
		t.Fatalf("list %+v", list)
	}
	f.want(f.do(admin, "GET", filterPrefix+"/"+rs.ID, nil), http.StatusOK)
	f.want(f.do(admin, "GET", filterPrefix+"/0123456789abcdef0123456789abcdef", nil), http.StatusNotFound)
	f.want(f.do(admin, "GET", filterPrefix+"/nope", nil), http.StatusNotFound)

	// Attach: unknown deployment 404, twice is one association.
	f.want(f.do(admin, "POST", filterPrefix+"/"+rs.ID+"/associations", AssociationBody{EntityType: "deployment", ID: "0123456789abcdef0123456789abcdef"}), http.StatusNotFound)
	f.want(f.do(admin, "POST", filterPrefix+"/"+rs.ID+"/associations", AssociationBody{EntityType: "cluster", ID: depID}), http.StatusBadRequest)
	f.want(f.do(admin, "POST", "/deployments/traffic-filter/rulesets/0123456789abcdef0123456789abcdef/associations", AssociationBody{ID: depID}), http.StatusNotFound)
	for range 2 {
		f.want(f.do(admin, "POST", filterPrefix+"/"+rs.ID+"/associations", AssociationBody{EntityType: "deployment", ID: depID}), http.StatusOK)
	}
	var as AssociationList
	f.want(f.do(admin, "GET", filterPrefix+"/"+rs.ID+"/associations", nil), http.StatusOK).decode(t, &as)
	if len(as.Associations) != 1 || as.Associations[0].ID != depID {
		t.Fatalf("associations %+v", as)
	}
	var view service.DeploymentView
	f.want(f.do(admin, "GET", "/deployments/"+depID, nil), http.StatusOK).decode(t, &view)
	if len(view.TrafficFilters) != 1 || view.TrafficFilters[0] != rs.ID {
		t.Fatalf("deployment shows filters %v", view.TrafficFilters)
	}

	// Update keeps the association.
	var up service.TrafficFilterView
	f.want(f.do(admin, "PUT", filterPrefix+"/"+rs.ID, TrafficFilterBody{Name: "office2", Rules: []engine.TrafficFilterRule{{Source: "192.0.2.0/24"}}}), http.StatusOK).decode(t, &up)
	if up.Name != "office2" || len(up.Rules) != 1 || up.TotalAssociations != 1 {
		t.Fatalf("updated %+v", up)
	}

	// Deleting an attached rule set is a conflict that says what to do.
	c := f.want(f.do(admin, "DELETE", filterPrefix+"/"+rs.ID, nil), http.StatusConflict).errBody(t)
	if !strings.Contains(c.Errors[0].Message, depID) || !strings.Contains(c.Errors[0].Message, "detach") {
		t.Fatalf("conflict message %q", c.Errors[0].Message)
	}
	// Detach, detach again (404), delete.
	f.want(f.do(admin, "DELETE", filterPrefix+"/"+rs.ID+"/associations/deployment/"+depID, nil), http.StatusOK)
	f.want(f.do(admin, "DELETE", filterPrefix+"/"+rs.ID+"/associations/deployment/"+depID, nil), http.StatusNotFound)
	view = service.DeploymentView{}
	f.want(f.do(admin, "GET", "/deployments/"+depID, nil), http.StatusOK).decode(t, &view)
	if len(view.TrafficFilters) != 0 {
		t.Fatalf("deployment still shows filters %v", view.TrafficFilters)
	}
	f.want(f.do(admin, "DELETE", filterPrefix+"/"+rs.ID, nil), http.StatusOK)
	f.want(f.do(admin, "GET", filterPrefix+"/"+rs.ID, nil), http.StatusNotFound)

	// include_by_default: attached to deployments created afterwards;
	// ignore_associations deletes it anyway.
	var def service.TrafficFilterView
	f.want(f.do(admin, "POST", filterPrefix, TrafficFilterBody{Name: "default", IncludeByDefault: true,
		Rules: []engine.TrafficFilterRule{{Source: "::1"}}}), http.StatusCreated).decode(t, &def)
	var dep2 service.CreateResult
	f.want(f.do(admin, "POST", "/deployments", createBody("second", 1024, 1)), http.StatusCreated).decode(t, &dep2)
	f.want(f.do(admin, "GET", "/deployments/"+dep2.Deployment.ID, nil), http.StatusOK).decode(t, &view)
	if len(view.TrafficFilters) != 1 || view.TrafficFilters[0] != def.ID {
		t.Fatalf("default filter not attached: %v", view.TrafficFilters)
	}
	f.want(f.do(admin, "DELETE", filterPrefix+"/"+def.ID, nil), http.StatusConflict)
	f.want(f.do(admin, "DELETE", filterPrefix+"/"+def.ID+"?ignore_associations=true", nil), http.StatusOK)
}
