package allocator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// Several allocators share one Docker engine (one per zone under paddock
// up) and a deployment's network is shared by its nodes on that engine.
// Docker does not make network names unique: two allocators creating
// "paddock-dep-<id>" at once get two networks, and listing right after
// the create does not always show the other one yet (a create that
// started first can become visible last). Measured on Docker 20.10: 30
// of 30 concurrent creates made duplicates, and in 3 of 30 the two
// creators chose different networks: their nodes could not resolve each
// other, every replicated write waited out its peer's DNS lookup, and
// TestDockerEndToEnd timed out "waiting for some writes".
//
// Container names, on the other hand, are unique and taken atomically:
// the engine-wide lock of a deployment's network is a container named
// paddock-netlock-<deployment id>, created (never started) from the
// node image by whoever creates or removes that network.

// LockStale is how old a lock container may get before it is taken as
// left by a crashed allocator and removed.
const LockStale = 30 * time.Second

// LabelLock marks lock containers (never workloads).
const LabelLock = "paddock.lock"

func lockName(dep string) string { return "paddock-netlock-" + dep }

// lockNetwork takes the engine-wide lock of dep's network, waiting with
// backoff while another allocator holds it; image is a local image to
// create the lock container from. The returned function releases it.
func (d *Docker) lockNetwork(ctx context.Context, dep, image string) (func(), error) {
	name := lockName(dep)
	labels := map[string]string{}
	for k, v := range d.cfg.Labels {
		labels[k] = v
	}
	labels[LabelLock], labels[LabelPlatform], labels[LabelDeployment] = "network", d.cfg.PlatformID, dep
	take := func() (string, error) {
		c, err := d.cli.ContainerCreate(ctx, &container.Config{Image: image, Labels: labels}, &container.HostConfig{NetworkMode: "none"}, nil, nil, name)
		if err == nil {
			return c.ID, nil
		}
		if !cerrdefs.IsConflict(err) {
			return "", backoff.Permanent(fmt.Errorf("take the network lock %s: %w", name, err))
		}
		held, ierr := d.cli.ContainerInspect(ctx, name)
		if ierr == nil {
			created, _ := time.Parse(time.RFC3339Nano, held.Created)
			if !created.IsZero() && time.Since(created) > LockStale {
				d.log.Warn("removing a stale network lock (its allocator stopped while holding it)", "lock", name, "created", held.Created)
				_ = d.cli.ContainerRemove(ctx, held.ID, container.RemoveOptions{Force: true})
			}
		}
		return "", errors.New("held by another allocator")
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = 20*time.Millisecond, 500*time.Millisecond
	id, err := backoff.Retry(ctx, take, backoff.WithBackOff(b), backoff.WithMaxElapsedTime(2*LockStale))
	if err != nil {
		return nil, fmt.Errorf("network lock %s: %w", name, err)
	}
	return func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := d.cli.ContainerRemove(rctx, id, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			d.log.Warn("cannot release the network lock; it goes stale in 30s", "lock", name, "err", err)
		}
	}, nil
}
