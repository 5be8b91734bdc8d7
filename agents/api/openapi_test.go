package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"paddock/engine"
	"paddock/engine/service"
)

type openAPIDoc struct {
	OpenAPI    string                    `yaml:"openapi"`
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			AdditionalProperties any            `yaml:"additionalProperties"`
			Properties           map[string]any `yaml:"properties"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadDoc(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := yaml.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesRoutes: the document lists exactly the routes that
// are registered, method by method.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	inDoc := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			inDoc[strings.ToUpper(m)+" "+p] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range routes() {
		served[rt.method+" "+rt.path] = true
	}
	var missing, extra []string
	for k := range served {
		if !inDoc[k] {
			missing = append(missing, k)
		}
	}
	for k := range inDoc {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("openapi.yaml out of date:\n routes not documented: %v\n documented but not served: %v", missing, extra)
	}
}

// TestOpenAPIRequestSchemas: the closed request schemas name exactly the
// JSON fields the server decodes (unknown fields are refused, so a
// mismatch would reject documented requests).
func TestOpenAPIRequestSchemas(t *testing.T) {
	doc := loadDoc(t)
	for name, typ := range map[string]any{
		"CreateDeploymentBody": CreateDeploymentBody{}, "UpdateDeploymentBody": UpdateDeploymentBody{},
		"MoveBody": MoveBody{}, "MaintenanceBody": MaintenanceBody{}, "ConstructorBody": ConstructorBody{},
		"CreateKeyBody": CreateKeyBody{}, "AllocatorSettings": engine.AllocatorSettings{},
		"Spec": engine.DeploymentSpec{}, "Topology": engine.Topology{},
		"TrafficFilterBody": TrafficFilterBody{}, "TrafficFilterRule": engine.TrafficFilterRule{}, "Association": AssociationBody{},
		"RepositoryBody": RepositoryBody{}, "RepositorySettings": service.RepositorySettings{}, "SnapshotPolicyBody": SnapshotPolicyBody{}, "RestoreBody": RestoreBody{},
	} {
		t.Run(name, func(t *testing.T) {
			sc, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("schema %s missing", name)
			}
			if sc.AdditionalProperties != false {
				t.Fatalf("schema %s must be closed (additionalProperties: false): the server refuses unknown fields", name)
			}
			var want []string
			rt := reflect.TypeOf(typ)
			for i := 0; i < rt.NumField(); i++ {
				tag := strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]
				if tag != "" && tag != "-" {
					want = append(want, tag)
				}
			}
			var got []string
			for k := range sc.Properties {
				got = append(got, k)
			}
			sort.Strings(want)
			sort.Strings(got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("schema %s properties %v, Go fields %v", name, got, want)
			}
		})
	}
}

// TestAPIDocsServed: /api/v1/api-docs serves the same document as JSON,
// without credentials.
func TestAPIDocsServed(t *testing.T) {
	h, err := NewHandler(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", Prefix+"/api-docs", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var served map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &served); err != nil {
		t.Fatal(err)
	}
	var fromYAML map[string]any
	if err := yaml.Unmarshal(OpenAPI(), &fromYAML); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(fromYAML)
	var want map[string]any
	_ = json.Unmarshal(b, &want)
	if !reflect.DeepEqual(served, want) {
		t.Fatal("served document differs from openapi.yaml")
	}
}
