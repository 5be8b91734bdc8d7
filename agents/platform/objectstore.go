package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/docker/docker/api/types/network"

	"paddock/agents/allocator"
	"paddock/engine"
	"paddock/engine/s3server"
	"paddock/engine/service"
)

// The platform's object store (docs/architecture.md, "Snapshots"): up
// runs SeaweedFS (engine/s3server) with its data under
// <state-dir>/objectstore and registers it as the default snapshot
// repository, so that every deployment is snapshotted out of the box.
//
// Nodes in Docker reach it at the Docker bridge's gateway address (the
// host as containers see it, 172.17.0.1 by default): weed listens there
// and nowhere else, so only this host and its containers reach it. With
// the sim runtime (nodes are host processes) it listens on 127.0.0.1.

// SnapshotBucket is the bucket of the default repository.
const SnapshotBucket = "paddock-snapshots"

// objectStoreDir is weed's directory under the state dir.
const objectStoreDir = "objectstore"

// objectStoreState is <state-dir>/objectstore/store.json (0600): the S3
// identity and the ports, kept so that a restart serves the same store
// at the same address.
type objectStoreState struct {
	AccessKey string                 `json:"access_key"`
	SecretKey string                 `json:"secret_key"`
	IP        string                 `json:"ip"`
	Port      int                    `json:"port"`
	Internal  s3server.InternalPorts `json:"internal"`
}

func loadObjectStoreState(dir string) (objectStoreState, error) {
	var st objectStoreState
	b, err := os.ReadFile(filepath.Join(dir, "store.json"))
	if errors.Is(err, os.ErrNotExist) {
		return objectStoreState{AccessKey: "paddock" + engine.RandomToken(8), SecretKey: engine.RandomToken(24)}, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil || st.SecretKey == "" {
		return st, fmt.Errorf("%s is damaged (%v): remove the objectstore directory to start a new, empty store", filepath.Join(dir, "store.json"), err)
	}
	return st, nil
}

func (st objectStoreState) save(dir string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "store.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "store.json"))
}

// objectStore is up's phase that starts weed and registers the default
// repository. Without weed (scripts/setup.sh not run) the platform comes
// up without it and says so: snapshots then need a repository added by
// hand.
func (r *run) objectStore(ctx context.Context) error {
	if r.cfg.S3Port < 0 {
		r.rec.step("object store off (--s3-port -1): add a snapshot repository with `paddock repository add default …`")
		return nil
	}
	if r.cfg.Containers {
		r.rec.set(func(st *Status) {
			st.Missing = append(st.Missing, "object store: not started with --containers (add a snapshot repository with `paddock repository add default …`)")
		})
		return nil
	}
	if _, err := s3server.Binary(); err != nil {
		r.log.Warn("no object store: deployments are not snapshotted until a repository is added", "err", err)
		r.rec.set(func(st *Status) { st.Missing = append(st.Missing, "object store: "+err.Error()) })
		return nil
	}
	dir := filepath.Join(r.dir, objectStoreDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := loadObjectStoreState(dir)
	if err != nil {
		return err
	}
	ip := "127.0.0.1"
	if r.cfg.Runtime == allocator.RuntimeDocker {
		if ip, err = dockerGateway(ctx); err != nil {
			return fmt.Errorf("the object store listens where containers reach the host: %w (or start without it: --s3-port -1)", err)
		}
	}
	if st.IP != ip {
		st.Internal, st.Port = s3server.InternalPorts{}, 0 // another address: new ports
	}
	if r.cfg.S3Port > 0 {
		st.Port = r.cfg.S3Port
	}
	// weed takes seconds to serve (its master's election): it starts in
	// the background and the rest of the platform does not wait for it;
	// up.json names it (object_store) once the default repository is
	// registered.
	r.rec.step("starting the object store (SeaweedFS) on %s in the background", ip)
	bctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var keeper *storeKeeper
	go func() {
		defer close(done)
		keeper = r.startObjectStore(bctx, dir, st, ip)
	}()
	r.onShutdown(func() {
		stop()
		<-done
		if keeper != nil {
			keeper.halt()
		}
	})
	return nil
}

// startObjectStore starts weed, keeps it running and registers it as
// the default repository; it returns the keeper (nil when weed did not
// start: the platform runs on without snapshots, and says so).
func (r *run) startObjectStore(ctx context.Context, dir string, st objectStoreState, ip string) *storeKeeper {
	fail := func(err error) *storeKeeper {
		if ctx.Err() == nil {
			r.log.Error("no object store: deployments are not snapshotted", "err", err)
			r.rec.set(func(s *Status) { s.Missing = append(s.Missing, "object store: "+err.Error()) })
		}
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	srv, err := s3server.Start(sctx, s3server.Options{Dir: dir, IP: ip, Port: st.Port, AccessKey: st.AccessKey, SecretKey: st.SecretKey,
		Buckets: []string{SnapshotBucket}, Internal: st.Internal})
	cancel()
	if err != nil {
		return fail(fmt.Errorf("start the object store: %w (choose its port with --s3-port, or start without it: --s3-port -1)", err))
	}
	o := srv.Options()
	st.IP, st.Port, st.Internal = ip, o.Port, o.Internal
	keeper := &storeKeeper{srv: srv, opts: o, log: r.log, logFile: filepath.Join(dir, "weed.log"), stop: make(chan struct{}), done: make(chan struct{})}
	go keeper.keep()
	if err := st.save(dir); err != nil {
		keeper.halt()
		return fail(err)
	}
	admin, err := r.connect(ctx, engine.RoleAdmin, nil, "objectstore")
	if err != nil {
		keeper.halt()
		return fail(err)
	}
	defer admin.Close()
	if err := registerDefaultRepository(ctx, admin, r.log, srv.Endpoint, st); err != nil {
		keeper.halt()
		return fail(err)
	}
	r.rec.step("object store serving at %s: the default snapshot repository", srv.Endpoint)
	r.rec.set(func(s *Status) { s.ObjectStore = srv.Endpoint })
	return keeper
}

// upActor names up in the records it writes.
const upActor = "paddock up"

// registerDefaultRepository points the default repository at the
// object store, unless an operator replaced it with another one.
func registerDefaultRepository(ctx context.Context, admin *engine.Store, log *slog.Logger, endpoint string, st objectStoreState) error {
	var cur engine.SnapshotRepository
	_, err := admin.GetJSON(ctx, engine.RepositoryPath(engine.DefaultRepository), &cur)
	switch {
	case errors.Is(err, engine.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read the default snapshot repository: %w", err)
	case cur.CreatedBy != upActor:
		log.Info("the default snapshot repository is an operator's: left as it is", "type", cur.Type, "where", cur.Endpoint+cur.Path)
		return nil
	}
	svc := service.New(admin, service.WithLogger(log))
	_, err = svc.PutRepository(ctx, engine.DefaultRepository, service.RepositoryConfig{Type: engine.RepositoryS3, Settings: service.RepositorySettings{
		Endpoint: endpoint, Bucket: SnapshotBucket, AccessKey: st.AccessKey, SecretKey: st.SecretKey}}, upActor)
	if err != nil {
		return fmt.Errorf("register the object store as the default snapshot repository: %w", err)
	}
	return nil
}

// dockerGateway is the Docker bridge's gateway: the host's address as
// containers see it.
func dockerGateway(ctx context.Context) (string, error) {
	cli, err := dockerClient(ctx, "the object store listens on the Docker bridge")
	if err != nil {
		return "", err
	}
	defer cli.Close()
	n, err := cli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect Docker's bridge network: %w", err)
	}
	for _, c := range n.IPAM.Config {
		if c.Gateway != "" {
			return c.Gateway, nil
		}
	}
	// Older engines leave the default bridge's gateway out: it is the
	// address of the bridge's interface (docker0), the subnet's first.
	ifname := n.Options["com.docker.network.bridge.name"]
	if ifname == "" {
		ifname = "docker0"
	}
	if ifc, err := net.InterfaceByName(ifname); err == nil {
		if addrs, err := ifc.Addrs(); err == nil {
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
					return ipn.IP.String(), nil
				}
			}
		}
	}
	for _, c := range n.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
			return p.Masked().Addr().Next().String(), nil
		}
	}
	return "", errors.New("Docker's bridge network has no gateway address")
}

// storeKeeper restarts the object store when it stops on its own (a
// crash, an operator's kill): snapshots fail while it is away and
// succeed again once it is back.
type storeKeeper struct {
	mu      sync.Mutex
	srv     *s3server.Server
	opts    s3server.Options
	log     *slog.Logger
	logFile string
	stop    chan struct{}
	done    chan struct{}
}

func (k *storeKeeper) current() *s3server.Server {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.srv
}

// halt stops keeping and stops the store.
func (k *storeKeeper) halt() {
	close(k.stop)
	<-k.done
	k.current().Stop()
}

func (k *storeKeeper) keep() {
	defer close(k.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-k.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = time.Second, 30*time.Second
	for {
		select {
		case <-ctx.Done():
			return
		case <-k.current().Done():
		}
		k.log.Error("the object store stopped: snapshots fail until it is back; restarting it", "log", k.logFile)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(bo.NextBackOff()):
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			srv, err := s3server.Start(sctx, k.opts)
			cancel()
			if err == nil {
				k.mu.Lock()
				k.srv = srv
				k.mu.Unlock()
				bo.Reset()
				k.log.Info("the object store is back", "endpoint", srv.Endpoint)
				break
			}
			if ctx.Err() != nil {
				return
			}
			k.log.Warn("the object store did not restart; retrying", "err", err)
		}
	}
}
