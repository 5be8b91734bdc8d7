// Package client is the Go client of the paddock API, used by the CLI.
// Every call returns the decoded answer and the raw JSON body, so `-o
// json` can print exactly what the API said. API errors are *Error with
// the status and the {"errors":[…]} body.
//
// It talks HTTP only: it must not touch ZooKeeper or import engine's
// store.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"paddock/agents/agentkit"
	"paddock/agents/api"
	"paddock/engine"
	"paddock/engine/headroom"
	"paddock/engine/service"
)

// Client calls the API at BaseURL (e.g. http://127.0.0.1:12400).
type Client struct {
	BaseURL string
	// Key is an API key (Authorization: ApiKey <key>); User/Password use
	// basic auth instead.
	Key            string
	User, Password string
	HTTP           *http.Client
}

// New returns a client with a default HTTP client.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Key: key, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// Error is an API error answer.
type Error struct {
	Status int
	Body   api.ErrorBody
	Raw    []byte
}

func (e *Error) Error() string {
	if len(e.Body.Errors) == 0 {
		return fmt.Sprintf("API answered %d: %s", e.Status, strings.TrimSpace(string(e.Raw)))
	}
	var parts []string
	for _, it := range e.Body.Errors {
		msg := it.Message
		for _, f := range it.Fields {
			msg += fmt.Sprintf("; %s: %s", f.Field, f.Message)
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}

// Code is the first error's code.
func (e *Error) Code() string {
	if len(e.Body.Errors) == 0 {
		return ""
	}
	return e.Body.Errors[0].Code
}

// Explained is what the CLI prints for the error: the API's message
// with the status and code and, when placement refused, each allocator
// that could not take the instance and why.
func (e *Error) Explained() string {
	msg := fmt.Sprintf("%s (HTTP %d %s)", e.Error(), e.Status, e.Code())
	if len(e.Body.Errors) > 0 {
		for _, v := range e.Body.Errors[0].Explain {
			if !v.Feasible {
				msg += fmt.Sprintf("\n  %s %s (%s): %s", v.Kind, v.Allocator, v.Zone, v.Reason)
			}
		}
	}
	return msg
}

// Settings say where the API is and which key to use: the CLI's
// --api-url, --api-key and --api-key-file.
type Settings struct {
	URL string
	Key string
	// KeyFile holds the key when Key is empty.
	KeyFile string
	// Timeout bounds one HTTP call.
	Timeout time.Duration
}

// FromSettings builds the client. A missing URL or key is an
// *agentkit.ConfigError (the operator must say it).
func FromSettings(s Settings) (*Client, error) {
	url := strings.TrimRight(s.URL, "/")
	if url == "" {
		return nil, agentkit.ConfigErrorf("no API URL: pass --api-url, set PADDOCK_API_URL, or start a platform with `paddock up`")
	}
	key := strings.TrimSpace(s.Key)
	if key == "" && s.KeyFile != "" {
		b, err := os.ReadFile(s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("API key file %s: %w (pass --api-key or PADDOCK_API_KEY instead)", s.KeyFile, err)
		}
		key = strings.TrimSpace(string(b))
	}
	if key == "" {
		return nil, agentkit.ConfigErrorf("no API key: pass --api-key, set PADDOCK_API_KEY, or create one with `paddock api key create --save`")
	}
	return &Client{BaseURL: url, Key: key, HTTP: &http.Client{Timeout: s.Timeout}}, nil
}

// StatusOf returns the HTTP status of an API error (0 otherwise).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Do sends one request; body (if not nil) is JSON-encoded. It returns
// the raw answer; a non-2xx answer is *Error.
func (c *Client) Do(ctx context.Context, method, path string, body any, hdr http.Header) ([]byte, error) {
	rc, err := c.send(ctx, method, path, body, hdr, false)
	if rc == nil {
		return nil, err
	}
	defer rc.Close()
	raw, rerr := io.ReadAll(rc)
	if err != nil {
		return raw, err
	}
	return raw, rerr
}

// Logs streams an instance's container log (GET
// /deployments/{id}/logs): instance "" is the deployment's first
// Elasticsearch instance. With o.Follow the stream lasts until ctx ends.
func (c *Client) Logs(ctx context.Context, id, instance string, o engine.LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if instance != "" {
		q.Set("instance", instance)
	}
	if o.Tail > 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Since > 0 {
		q.Set("since", o.Since.String())
	}
	path := "/deployments/" + esc(id) + "/logs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.send(ctx, "GET", path, nil, nil, true)
}

// send sends one request. With stream, a 2xx answer's body is returned
// open (the caller closes it); otherwise the whole answer is read: the
// raw body, or *Error for a non-2xx answer (also with stream).
func (c *Client) send(ctx context.Context, method, path string, body any, hdr http.Header, stream bool) (io.ReadCloser, error) {
	if c.BaseURL == "" {
		return nil, errors.New("no API URL: pass --api-url, set PADDOCK_API_URL, or run `paddock up` (it writes ~/.paddock/config.yaml)")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+api.Prefix+path, rd)
	if err != nil {
		return nil, fmt.Errorf("API URL %s: %w", c.BaseURL, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	switch {
	case c.Key != "":
		req.Header.Set("Authorization", "ApiKey "+c.Key)
	case c.User != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	if stream {
		// A followed log lasts as long as ctx: no overall timeout.
		nc := *hc
		nc.Timeout = 0
		hc = &nc
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the API at %s: %w (is `paddock api` or `paddock up` running? check --api-url / PADDOCK_API_URL)", c.BaseURL, err)
	}
	if stream && resp.StatusCode < 300 {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read API answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode, Raw: raw}
		_ = json.Unmarshal(raw, &e.Body)
		return io.NopCloser(bytes.NewReader(raw)), e
	}
	return io.NopCloser(bytes.NewReader(raw)), nil
}

func call[T any](ctx context.Context, c *Client, method, path string, body any, hdr http.Header) (T, []byte, error) {
	var out T
	raw, err := c.Do(ctx, method, path, body, hdr)
	if err != nil {
		return out, raw, err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, raw, fmt.Errorf("decode API answer of %s %s: %w", method, path, err)
	}
	return out, raw, nil
}

func esc(s string) string { return url.PathEscape(s) }

// ListDeployments lists deployments.
func (c *Client) ListDeployments(ctx context.Context, showDeleted bool) (api.DeploymentList, []byte, error) {
	p := "/deployments"
	if showDeleted {
		p += "?show_deleted=true"
	}
	return call[api.DeploymentList](ctx, c, "GET", p, nil, nil)
}

// CreateDeployment creates a deployment.
func (c *Client) CreateDeployment(ctx context.Context, b api.CreateDeploymentBody) (service.CreateResult, []byte, error) {
	return call[service.CreateResult](ctx, c, "POST", "/deployments", b, nil)
}

// GetDeployment reads one deployment.
func (c *Client) GetDeployment(ctx context.Context, id string) (service.DeploymentView, []byte, error) {
	return call[service.DeploymentView](ctx, c, "GET", "/deployments/"+esc(id), nil, nil)
}

// UpdateDeployment sends an update (If-Match when ifMatch >= 0).
func (c *Client) UpdateDeployment(ctx context.Context, id string, b api.UpdateDeploymentBody, ifMatch int32) (service.PlanResult, []byte, error) {
	var h http.Header
	if ifMatch >= 0 {
		h = http.Header{"If-Match": {strconv.Itoa(int(ifMatch))}}
	}
	return call[service.PlanResult](ctx, c, "PUT", "/deployments/"+esc(id), b, h)
}

// ChangeSpec reads deployment id, changes its desired spec and sends
// it with the resource version read: a concurrent change gives 409
// instead of being overwritten.
func (c *Client) ChangeSpec(ctx context.Context, id string, change func(*engine.DeploymentSpec)) (service.PlanResult, []byte, error) {
	d, _, err := c.GetDeployment(ctx, id)
	if err != nil {
		return service.PlanResult{}, nil, err
	}
	spec := d.DesiredSpec()
	change(&spec)
	return c.UpdateDeployment(ctx, id, api.UpdateDeploymentBody{Spec: &spec}, d.ResourceVersion)
}

// UpdateDeploymentRaw sends a raw JSON update body (update -f file).
func (c *Client) UpdateDeploymentRaw(ctx context.Context, id string, body json.RawMessage) (service.PlanResult, []byte, error) {
	return call[service.PlanResult](ctx, c, "PUT", "/deployments/"+esc(id), body, nil)
}

// DeleteDeployment deletes a deployment (a plan).
func (c *Client) DeleteDeployment(ctx context.Context, id string) (service.PlanResult, []byte, error) {
	return call[service.PlanResult](ctx, c, "DELETE", "/deployments/"+esc(id), nil, nil)
}

// RestartDeployment restarts a deployment (a plan).
func (c *Client) RestartDeployment(ctx context.Context, id string) (service.PlanResult, []byte, error) {
	return call[service.PlanResult](ctx, c, "POST", "/deployments/"+esc(id)+"/_restart", nil, nil)
}

// ResetPassword issues a new elastic password (shown once).
func (c *Client) ResetPassword(ctx context.Context, id string) (service.ResetPasswordResult, []byte, error) {
	return call[service.ResetPasswordResult](ctx, c, "POST", "/deployments/"+esc(id)+"/elasticsearch/main-elasticsearch/_reset-password", nil, nil)
}

// RetryPlan retries the last plan when it failed (a new plan).
func (c *Client) RetryPlan(ctx context.Context, id string) (service.PlanResult, []byte, error) {
	return call[service.PlanResult](ctx, c, "POST", "/deployments/"+esc(id)+"/plan/_retry", nil, nil)
}

// CancelPlan cancels the pending plan.
func (c *Client) CancelPlan(ctx context.Context, id string) (api.CancelResponse, []byte, error) {
	return call[api.CancelResponse](ctx, c, "DELETE", "/deployments/"+esc(id)+"/plan/pending", nil, nil)
}

// Activity reads a deployment's plans.
func (c *Client) Activity(ctx context.Context, id string) (service.Activity, []byte, error) {
	return call[service.Activity](ctx, c, "GET", "/deployments/"+esc(id)+"/activity", nil, nil)
}

// Platform reads the platform overview.
func (c *Client) Platform(ctx context.Context) (service.PlatformView, []byte, error) {
	return call[service.PlatformView](ctx, c, "GET", "/platform", nil, nil)
}

// Headroom reads the zone-loss and vacate headroom.
func (c *Client) Headroom(ctx context.Context) (headroom.Report, []byte, error) {
	return call[headroom.Report](ctx, c, "GET", "/platform/headroom", nil, nil)
}

// Doctor runs the platform's checks.
func (c *Client) Doctor(ctx context.Context) (service.DoctorReport, []byte, error) {
	return call[service.DoctorReport](ctx, c, "GET", "/platform/doctor", nil, nil)
}

// ListAllocators lists allocators.
func (c *Client) ListAllocators(ctx context.Context) (api.AllocatorList, []byte, error) {
	return call[api.AllocatorList](ctx, c, "GET", "/platform/infrastructure/allocators", nil, nil)
}

// GetAllocator reads one allocator.
func (c *Client) GetAllocator(ctx context.Context, id string) (service.AllocatorView, []byte, error) {
	return call[service.AllocatorView](ctx, c, "GET", "/platform/infrastructure/allocators/"+esc(id), nil, nil)
}

// Maintenance turns maintenance mode on or off.
func (c *Client) Maintenance(ctx context.Context, id string, on bool, reason string) (service.AllocatorView, []byte, error) {
	verb := "_stop"
	if on {
		verb = "_start"
	}
	var body any
	if reason != "" {
		body = api.MaintenanceBody{Reason: reason}
	}
	return call[service.AllocatorView](ctx, c, "POST", "/platform/infrastructure/allocators/"+esc(id)+"/maintenance-mode/"+verb, body, nil)
}

// Vacate moves every deployment off an allocator.
func (c *Client) Vacate(ctx context.Context, id string, targets []string) (service.VacateResult, []byte, error) {
	return call[service.VacateResult](ctx, c, "POST", "/platform/infrastructure/allocators/"+esc(id)+"/clusters/_move", api.MoveBody{Targets: targets}, nil)
}

// AllocatorSettings replaces an allocator's settings.
func (c *Client) AllocatorSettings(ctx context.Context, id string, capacityMB int, tags map[string]string) (service.AllocatorView, []byte, error) {
	return call[service.AllocatorView](ctx, c, "PUT", "/platform/infrastructure/allocators/"+esc(id)+"/settings",
		map[string]any{"capacity_mb": capacityMB, "tags": tags}, nil)
}

// Proxies lists proxies.
func (c *Client) Proxies(ctx context.Context) (api.ProxyList, []byte, error) {
	return call[api.ProxyList](ctx, c, "GET", "/platform/infrastructure/proxies", nil, nil)
}

// ConstructorSettings reads the constructor settings.
func (c *Client) ConstructorSettings(ctx context.Context) (service.ConstructorSettings, []byte, error) {
	return call[service.ConstructorSettings](ctx, c, "GET", "/platform/configuration/store/constructor", nil, nil)
}

// SetConstructorSettings writes the constructor settings.
func (c *Client) SetConstructorSettings(ctx context.Context, b api.ConstructorBody) (service.ConstructorSettings, []byte, error) {
	return call[service.ConstructorSettings](ctx, c, "PUT", "/platform/configuration/store/constructor", b, nil)
}

// ListKeys lists API keys.
func (c *Client) ListKeys(ctx context.Context) (api.KeyList, []byte, error) {
	return call[api.KeyList](ctx, c, "GET", "/users/auth/keys", nil, nil)
}

// CreateKey creates an API key.
func (c *Client) CreateKey(ctx context.Context, name, role string) (api.CreateKeyResponse, []byte, error) {
	return call[api.CreateKeyResponse](ctx, c, "POST", "/users/auth/keys", api.CreateKeyBody{Name: name, Role: role}, nil)
}

// RevokeKey revokes an API key.
func (c *Client) RevokeKey(ctx context.Context, id string) ([]byte, error) {
	return c.Do(ctx, "DELETE", "/users/auth/keys/"+esc(id), nil, nil)
}
