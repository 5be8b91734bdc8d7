package allocator

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// LogClient reads instances' logs from their allocators, through each
// allocator's node tunnel with an admin-role certificate (the API and
// the console check the operator's authority before they ask).
type LogClient struct {
	tunnel *stunnel.Client
}

// NewLogClient returns a client presenting loader's certificate (the
// admin role: the allocators admit no other role to their logs).
func NewLogClient(loader *stunnel.Loader, log *slog.Logger) (*LogClient, error) {
	c, err := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "allocator-logs", Loader: loader,
		Allow: stunnel.Allow{Roles: []string{string(engine.RoleAllocator)}}, HandshakeTimeout: 10 * time.Second, ConnectTimeout: 10 * time.Second},
		Logger: log})
	if err != nil {
		return nil, fmt.Errorf("client of the allocators' log endpoints: %w (check the admin certificate under <state-dir>/tls)", err)
	}
	return &LogClient{tunnel: c}, nil
}

// Logs opens instance's log on the allocator whose node tunnel listens
// at tunnelAddr. The stream ends with the log unless o.Follow, then
// when ctx ends.
func (c *LogClient) Logs(ctx context.Context, tunnelAddr, instance string, o engine.LogOptions) (io.ReadCloser, error) {
	if tunnelAddr == "" {
		return nil, fmt.Errorf("the instance's allocator runs no node tunnel: its logs cannot be reached (start it with a certificate, --tunnel-addr)")
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return c.tunnel.DialSNI(ctx, tunnelAddr, stunnel.BackendSNI(LogsBackend))
		}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://allocator/logs/"+url.PathEscape(instance)+"?"+LogQuery(o), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the log of instance %s from its allocator (%s): %w", instance, tunnelAddr, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &LogError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	return resp.Body, nil
}

// LogError is the allocator's refusal of a log read.
type LogError struct {
	Status  int
	Message string
}

func (e *LogError) Error() string {
	return fmt.Sprintf("allocator answered %d: %s", e.Status, e.Message)
}
