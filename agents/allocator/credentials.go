package allocator

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"

	"paddock/agents/node"
	"paddock/engine"
)

// Nodes never touch ZooKeeper: the allocator (which may read
// /paddock/credentials) hands each node its deployment's credentials
// as the file node.SecurityFileName in its data volume, 0600, owned by
// the node's user: before the container first starts (the node then
// runs with --require-credentials and refuses everything until it has
// the file), and again whenever the record changes (reset-password);
// the node reads the file again within a second. The allocator's own
// health probes present the platform identity of the same record.

// credentialRuntime is a runtime whose nodes take credentials (Docker;
// the sim runtime runs no nodes).
type credentialRuntime interface {
	// DeliverCredentials writes the credentials file into the data
	// volume of a created (started or not) workload.
	DeliverCredentials(ctx context.Context, containerID string, f node.SecurityFile) error
	// SetPlatformAuth gives the runtime's probes the platform credential
	// of a deployment.
	SetPlatformAuth(func(ctx context.Context, deploymentID string) node.PlatformCredential)
}

// credentialCacheTTL is how stale a credentials record read may be.
const credentialCacheTTL = time.Second

// credentials reads and caches deployments' credential records.
type credentials struct {
	s   *engine.Store
	mu  sync.Mutex
	m   map[string]credEntry
	now func() time.Time
}

type credEntry struct {
	file  node.SecurityFile
	ver   engine.Version
	found bool
	at    time.Time
}

func newCredentials(s *engine.Store) *credentials {
	return &credentials{s: s, m: map[string]credEntry{}, now: time.Now}
}

// SecurityFileOf turns a credentials record into the node's file.
func SecurityFileOf(rec engine.DeploymentCredentials) node.SecurityFile {
	f := node.SecurityFile{Platform: node.PlatformCredential{Password: rec.PlatformSecret}}
	for _, u := range rec.Users {
		f.Users = append(f.Users, node.UserHash{Username: u.Username, PasswordHash: u.PasswordHash, Roles: []string{"superuser"}})
	}
	return f
}

// get returns deployment id's credentials (found is false for a
// deployment from before deployment security).
func (c *credentials) get(ctx context.Context, id string) (credEntry, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && c.now().Sub(e.at) < credentialCacheTTL {
		return e, nil
	}
	var rec engine.DeploymentCredentials
	ver, err := c.s.GetJSON(ctx, engine.CredentialsPath(id), &rec)
	switch {
	case errors.Is(err, engine.ErrNotFound):
		e = credEntry{at: c.now()}
	case err != nil:
		if ok {
			return e, nil // keep serving the last known record
		}
		return e, fmt.Errorf("read the credentials of deployment %s: %w", id, err)
	default:
		e = credEntry{file: SecurityFileOf(rec), ver: ver, found: true, at: c.now()}
	}
	c.mu.Lock()
	c.m[id] = e
	c.mu.Unlock()
	return e, nil
}

// platform is the probes' credential of a deployment.
func (c *credentials) platform(ctx context.Context, id string) node.PlatformCredential {
	e, err := c.get(ctx, id)
	if err != nil {
		return node.PlatformCredential{}
	}
	return e.file.Platform
}

// credentialSync re-delivers changed credentials to running nodes, one
// sweep at a time, at most once per credentialCacheTTL.
type credentialSync struct {
	running   atomic.Bool
	last      time.Time
	delivered map[string]engine.Version // container id → record version
}

// syncCredentials (reconcile goroutine) starts a sweep over the running
// workloads when none runs.
func (a *agent) syncCredentials(ctx context.Context) {
	cr, ok := a.rt.(credentialRuntime)
	if !ok || a.creds == nil || time.Since(a.credSync.last) < credentialCacheTTL || !a.credSync.running.CompareAndSwap(false, true) {
		return
	}
	a.credSync.last = time.Now()
	type target struct{ container, dep, inst string }
	var ts []target
	for _, t := range a.tracked {
		if t.w != nil && t.w.Running && t.w.Deployment != "" {
			ts = append(ts, target{t.w.ID, t.w.Deployment, t.id})
		}
	}
	a.inflight.Add(1)
	go func() {
		defer a.inflight.Done()
		defer a.credSync.running.Store(false)
		if a.credSync.delivered == nil {
			a.credSync.delivered = map[string]engine.Version{}
		}
		seen := map[string]bool{}
		for _, t := range ts {
			seen[t.container] = true
			e, err := a.creds.get(ctx, t.dep)
			if err != nil || !e.found {
				continue
			}
			if v, ok := a.credSync.delivered[t.container]; ok && v == e.ver {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err = cr.DeliverCredentials(dctx, t.container, e.file)
			cancel()
			if err != nil {
				a.log.Warn("could not hand a node its credentials; retrying", "instance", t.inst, "err", err)
				continue
			}
			a.credSync.delivered[t.container] = e.ver
			a.log.Info("node credentials delivered", "instance", t.inst, "deployment", t.dep, "version", e.ver)
		}
		for id := range a.credSync.delivered {
			if !seen[id] {
				delete(a.credSync.delivered, id)
			}
		}
	}()
}

// securityOf is the credentials file a new node of in starts with (nil
// for a deployment from before deployment security, or a runtime
// without nodes).
func (a *agent) securityOf(ctx context.Context, in engine.Instance) (*node.SecurityFile, error) {
	if _, ok := a.rt.(credentialRuntime); !ok || a.creds == nil {
		return nil, nil
	}
	e, err := a.creds.get(ctx, in.DeploymentID)
	if err != nil || !e.found {
		return nil, err
	}
	return &e.file, nil
}

// credentialsArchive is the tar stream CopyToContainer extracts at the
// data volume's root: security/ (0700) and the file (0600), owned by the
// node's user. PAX keeps sub-second times, so the node sees every change.
func credentialsArchive(f node.SecurityFile) (*bytes.Buffer, error) {
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := path.Dir(node.SecurityFileName)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o700, Uid: NodeUID, Gid: NodeUID, ModTime: now, Format: tar.FormatPAX},
		{Typeflag: tar.TypeReg, Name: node.SecurityFileName, Mode: 0o600, Size: int64(len(b)), Uid: NodeUID, Gid: NodeUID, ModTime: now, Format: tar.FormatPAX},
	}
	for i, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if i == 1 {
			if _, err := tw.Write(b); err != nil {
				return nil, err
			}
		}
	}
	return &buf, tw.Close()
}

// DeliverCredentials implements credentialRuntime.
func (d *Docker) DeliverCredentials(ctx context.Context, id string, f node.SecurityFile) error {
	buf, err := credentialsArchive(f)
	if err != nil {
		return err
	}
	if err := d.cli.CopyToContainer(ctx, id, "/data", buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("copy the credentials file into container %s: %w", short(id), err)
	}
	return nil
}

// SetPlatformAuth implements credentialRuntime.
func (d *Docker) SetPlatformAuth(fn func(ctx context.Context, deploymentID string) node.PlatformCredential) {
	d.platformAuth = fn
}
