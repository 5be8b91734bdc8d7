package api

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// openAPIYAML is the API's OpenAPI 3 document, kept in the repository
// beside the routes (openapi.yaml) and checked against them by a test.
//
//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPI returns the document as YAML.
func OpenAPI() []byte { return openAPIYAML }

// openAPIJSON converts the embedded document to JSON (served at
// /api/v1/api-docs).
func openAPIJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("api: embedded openapi.yaml is malformed: %w", err)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("api: embedded openapi.yaml cannot be rendered as JSON: %w", err)
	}
	return append(b, '\n'), nil
}
