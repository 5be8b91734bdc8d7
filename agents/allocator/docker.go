package allocator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"paddock/agents/node"
	"paddock/engine"
)

// Labels on everything the allocator creates.
const (
	LabelManaged    = "paddock.managed"
	LabelInstance   = "paddock.instance"
	LabelDeployment = "paddock.deployment"
	LabelKind       = "paddock.kind"
	LabelAllocator  = "paddock.allocator"
	// LabelPlatform carries the platform id (engine.PlatformConfig.ID):
	// an allocator lists and removes only objects of its own platform,
	// so two platforms on one Docker host (a test beside a live `paddock
	// up`, both with allocator alloc-zone-1-1) never touch each other's.
	LabelPlatform   = "paddock.platform"
	LabelVersion    = "paddock.version"
	LabelGeneration = "paddock.generation"
	LabelSize       = "paddock.size_mb"
	LabelTest       = "paddock.test"
)

const nodePort = nat.Port("9200/tcp")

// DockerConfig configures the Docker runtime.
type DockerConfig struct {
	AllocatorID string
	// PlatformID is the platform's id (label paddock.platform). Required.
	PlatformID string
	// PublishIP is the host address node ports are published on
	// (never 0.0.0.0 by default: 127.0.0.1).
	PublishIP string
	// SnapshotDir is the host directory mounted at /snapshots.
	SnapshotDir string
	ImageRepo   string
	// NodeBinary, when set, is a static paddock binary used to build a
	// missing image, or to rebuild one built from another binary; when
	// empty a missing image is an error.
	NodeBinary string
	// Labels are added to every object (tests: paddock.test=<name>).
	Labels    map[string]string
	PidsLimit int64
	// TmpfsSizeMB bounds /tmp in node containers.
	TmpfsSizeMB int
	Logger      *slog.Logger
	// Client overrides the client built from the environment.
	Client *client.Client
	// PeerEgress, when set, gives an instance's egress socket directory
	// (egress.go): it is mounted read-only at /run/paddock and the node
	// started with --peer-egress.
	PeerEgress func(iid, dep string) (string, error)
	// IsolateNodes: one network per deployment and allocator
	// (NetworkNameOf) instead of one per deployment shared by the host's
	// allocators.
	IsolateNodes bool
}

// Docker runs nodes as containers on the local Docker engine.
type Docker struct {
	cfg  DockerConfig
	cli  *client.Client
	log  *slog.Logger
	http *http.Client

	imgMu  sync.Mutex
	images map[string]bool
	netMu  sync.Mutex

	// inspected caches container inspections between passes: a container
	// is inspected again when its state changed, an event named it, an
	// action of ours touched it, or the entry is older than inspectTTL.
	cacheMu   sync.Mutex
	inspected map[string]cachedWorkload

	foreignOnce sync.Once

	// platformAuth gives probes the deployment's platform credential.
	platformAuth func(ctx context.Context, deploymentID string) node.PlatformCredential
}

type cachedWorkload struct {
	w  Workload
	at time.Time
}

// inspectTTL bounds how stale a cached inspection may be when no event
// arrived (the event stream may be re-subscribing).
const inspectTTL = 10 * time.Second

// invalidate drops the cached inspection of a container.
func (d *Docker) invalidate(id string) {
	d.cacheMu.Lock()
	delete(d.inspected, id)
	d.cacheMu.Unlock()
}

// NewDocker connects to the Docker engine (DOCKER_HOST or the default
// socket) with API version negotiation.
func NewDocker(cfg DockerConfig) (*Docker, error) {
	if cfg.PlatformID == "" {
		return nil, errors.New("docker runtime needs the platform id (paddock.platform label): read it from /paddock/config")
	}
	if cfg.PublishIP == "" {
		cfg.PublishIP = "127.0.0.1"
	}
	if cfg.PidsLimit == 0 {
		cfg.PidsLimit = 512
	}
	if cfg.TmpfsSizeMB == 0 {
		cfg.TmpfsSizeMB = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cli := cfg.Client
	if cli == nil {
		var err error
		cli, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("docker client: %w (set DOCKER_HOST or start the Docker engine)", err)
		}
	}
	if cfg.SnapshotDir != "" {
		if err := os.MkdirAll(cfg.SnapshotDir, 0o755); err != nil {
			return nil, fmt.Errorf("snapshot directory %s: %w (pass a writable --snapshot-dir)", cfg.SnapshotDir, err)
		}
		// Nodes run as NodeUID: let them write repositories here. A shared
		// directory (NFS, another allocator's) may already allow it and
		// belong to someone else.
		st, err := os.Stat(cfg.SnapshotDir)
		if err != nil {
			return nil, fmt.Errorf("snapshot directory %s: %w", cfg.SnapshotDir, err)
		}
		if st.Mode().Perm()&0o002 == 0 {
			if err := os.Chmod(cfg.SnapshotDir, 0o1777); err != nil {
				return nil, fmt.Errorf("snapshot directory %s is not writable by the nodes (uid %d): %w (chmod 1777 it, or chown it to %d)",
					cfg.SnapshotDir, NodeUID, err, NodeUID)
			}
		}
	}
	return &Docker{cfg: cfg, cli: cli, log: cfg.Logger, images: map[string]bool{}, inspected: map[string]cachedWorkload{},
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}, nil
}

// Client exposes the Docker client (tests, image builds).
func (d *Docker) Client() *client.Client { return d.cli }

// Name is "docker".
func (d *Docker) Name() string { return "docker" }

// Close releases the client.
func (d *Docker) Close() error { return d.cli.Close() }

// Ping asks the engine.
func (d *Docker) Ping(ctx context.Context) error {
	if _, err := d.cli.Ping(ctx); err != nil {
		return fmt.Errorf("docker engine unreachable: %w (start it, or check DOCKER_HOST)", err)
	}
	return nil
}

// Host reports the engine's CPUs and memory.
func (d *Docker) Host(ctx context.Context) (HostInfo, error) {
	info, err := d.cli.Info(ctx)
	if err != nil {
		return HostInfo{}, fmt.Errorf("docker info: %w (is the Docker engine running?)", err)
	}
	return HostInfo{CPUs: info.NCPU, MemoryMB: int(info.MemTotal >> 20)}, nil
}

func (d *Docker) ownFilter() filters.Args {
	return filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"),
		filters.Arg("label", LabelPlatform+"="+d.cfg.PlatformID),
		filters.Arg("label", LabelAllocator+"="+d.cfg.AllocatorID))
}

// EnsureImage checks the image of version, building it from NodeBinary
// when it is missing or was built from another binary (and a binary is
// configured).
func (d *Docker) EnsureImage(ctx context.Context, version string) error {
	ref := ImageRef(d.cfg.ImageRepo, version)
	d.imgMu.Lock()
	defer d.imgMu.Unlock()
	if d.images[ref] {
		return nil
	}
	current, err := ImageUpToDate(ctx, d.cli, ref, d.cfg.NodeBinary)
	if err != nil {
		return err
	}
	if current {
		d.images[ref] = true
		return nil
	}
	if d.cfg.NodeBinary == "" {
		return fmt.Errorf("%w: %s is not on this host: build it with `paddock image build --version %s` (this allocator has no static binary to build it itself)", ErrImageMissing, ref, version)
	}
	d.log.Info("building node image (missing, or built from another binary)", "image", ref, "binary", d.cfg.NodeBinary)
	if err := BuildImage(ctx, d.cli, BuildOptions{Binary: d.cfg.NodeBinary, Repo: d.cfg.ImageRepo, Version: version, Labels: d.cfg.Labels}, nil); err != nil {
		return fmt.Errorf("%w: %s could not be built: %v", ErrImageMissing, ref, err)
	}
	d.images[ref] = true
	return nil
}

// legacyOf says whether labels are those of an object made before
// platform ids for exactly spec's instance: same allocator, instance and
// deployment (random ids: another platform never assigns the same
// pair). A platform upgraded from before platform ids adopts such
// objects: the container is re-created on its data volume.
func (d *Docker) legacyOf(labels map[string]string, spec Spec) bool {
	return labels[LabelPlatform] == "" && labels[LabelManaged] == "true" && labels[LabelAllocator] == d.cfg.AllocatorID &&
		labels[LabelInstance] == spec.Instance.ID && labels[LabelDeployment] == spec.Instance.DeploymentID
}

func platformDesc(id string) string {
	if id == "" {
		return "no platform (unlabelled, from before platform ids)"
	}
	return "platform " + id
}

// reportForeign logs, once, the containers and volumes named for this
// allocator id that belong to another platform or to none (made before
// platform ids): they are never listed, probed or removed here.
func (d *Docker) reportForeign(ctx context.Context) {
	d.foreignOnce.Do(func() {
		f := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"), filters.Arg("label", LabelAllocator+"="+d.cfg.AllocatorID))
		if cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f}); err == nil {
			for _, c := range cs {
				if got := c.Labels[LabelPlatform]; got != d.cfg.PlatformID {
					name := ""
					if len(c.Names) > 0 {
						name = trimSlash(c.Names[0])
					}
					d.log.Warn("container of another platform with this allocator id: left alone", "container", name,
						"owner", platformDesc(got), "platform", d.cfg.PlatformID,
						"hint", "remove it yourself (docker rm -f) if its platform is gone; an unlabelled one whose instance this platform assigns is re-created on its volume")
				}
			}
		}
		if vs, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: f}); err == nil {
			for _, v := range vs.Volumes {
				if got := v.Labels[LabelPlatform]; got != d.cfg.PlatformID {
					d.log.Warn("data volume of another platform with this allocator id: left alone", "volume", v.Name,
						"owner", platformDesc(got), "platform", d.cfg.PlatformID)
				}
			}
		}
	})
}

// List returns this allocator's containers (this platform's only).
func (d *Docker) List(ctx context.Context) ([]Workload, error) {
	d.reportForeign(ctx)
	cs, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: d.ownFilter()})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Workload, 0, len(cs))
	live := make(map[string]bool, len(cs))
	now := time.Now()
	for _, c := range cs {
		live[c.ID] = true
		d.cacheMu.Lock()
		cw, ok := d.inspected[c.ID]
		d.cacheMu.Unlock()
		if ok && cw.w.State == string(c.State) && now.Sub(cw.at) < inspectTTL {
			out = append(out, cw.w)
			continue
		}
		w, err := d.Inspect(ctx, c.ID)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		d.cacheMu.Lock()
		d.inspected[c.ID] = cachedWorkload{w: w, at: now}
		d.cacheMu.Unlock()
		out = append(out, w)
	}
	d.cacheMu.Lock()
	for id := range d.inspected {
		if !live[id] {
			delete(d.inspected, id)
		}
	}
	d.cacheMu.Unlock()
	return out, nil
}

// Inspect reads one container.
func (d *Docker) Inspect(ctx context.Context, id string) (Workload, error) {
	ci, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return Workload{}, err
	}
	l := ci.Config.Labels
	w := Workload{ID: ci.ID, Name: trimSlash(ci.Name), Instance: l[LabelInstance], Deployment: l[LabelDeployment],
		Kind: l[LabelKind], Version: l[LabelVersion]}
	w.SizeMB, _ = strconv.Atoi(l[LabelSize])
	w.Generation, _ = strconv.Atoi(l[LabelGeneration])
	if st := ci.State; st != nil {
		w.State, w.Running, w.ExitCode, w.OOMKilled, w.Error = string(st.Status), st.Running, st.ExitCode, st.OOMKilled, st.Error
		w.StartedAt, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		w.FinishedAt, _ = time.Parse(time.RFC3339Nano, st.FinishedAt)
		if st.Health != nil {
			w.Health = string(st.Health.Status)
		}
	}
	if ci.HostConfig != nil {
		w.CPUShares, w.NanoCPUs = ci.HostConfig.CPUShares, ci.HostConfig.NanoCPUs
	}
	if ci.NetworkSettings != nil {
		for _, b := range ci.NetworkSettings.Ports[nodePort] {
			if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
				w.HostPort = p
				w.Address = d.cfg.PublishIP + ":" + b.HostPort
				break
			}
		}
	}
	return w, nil
}

func trimSlash(s string) string {
	if len(s) > 0 && s[0] == '/' {
		return s[1:]
	}
	return s
}

// ContainerName is the container of an instance on an allocator.
func ContainerName(alloc, iid string) string { return "paddock-" + alloc + "-" + iid }

// VolumeName is the data volume of an instance on an allocator.
func VolumeName(alloc, iid string) string { return "paddock-data-" + alloc + "-" + iid }

// NetworkName is a deployment's own network.
func NetworkName(dep string) string { return "paddock-dep-" + dep }

// NetworkNameOf is the network an allocator puts a deployment's nodes
// on: the deployment's, or with isolate its own for that deployment.
func NetworkNameOf(dep, alloc string, isolate bool) string {
	if isolate {
		return NetworkName(dep) + "-" + alloc
	}
	return NetworkName(dep)
}

func (d *Docker) networkName(dep string) string {
	return NetworkNameOf(dep, d.cfg.AllocatorID, d.cfg.IsolateNodes)
}

// Alias is a node's name on its deployment network.
func Alias(iid string) string { return "paddock-" + iid }

func (d *Docker) labels(spec Spec) map[string]string {
	in := spec.Instance
	l := map[string]string{}
	for k, v := range d.cfg.Labels {
		l[k] = v
	}
	l[LabelManaged] = "true"
	l[LabelAllocator] = d.cfg.AllocatorID
	l[LabelPlatform] = d.cfg.PlatformID
	l[LabelInstance] = in.ID
	l[LabelDeployment] = in.DeploymentID
	l[LabelKind] = in.Kind
	l[LabelVersion] = in.Version
	l[LabelGeneration] = strconv.Itoa(in.Generation)
	l[LabelSize] = strconv.Itoa(in.SizeMB)
	return l
}

// ensureNetwork returns the id of the deployment's bridge network,
// creating it if missing (shared by the allocators of one host) under the
// engine-wide lock of that network (docker_lock.go): Docker allows two
// networks of one name when creates race. Duplicates made without the
// lock (earlier versions) are resolved to the oldest one.
func (d *Docker) ensureNetwork(ctx context.Context, dep, image string) (string, error) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	name := d.networkName(dep)
	id, err := d.oldestNetwork(ctx, name)
	if err != nil || id != "" {
		return id, err
	}
	unlock, err := d.lockNetwork(ctx, dep, image)
	if err != nil {
		return "", err
	}
	defer unlock()
	if id, err := d.oldestNetwork(ctx, name); err != nil || id != "" {
		return id, err // created by the allocator that held the lock
	}
	labels := map[string]string{}
	for k, v := range d.cfg.Labels {
		labels[k] = v
	}
	labels[LabelManaged], labels[LabelDeployment], labels[LabelPlatform] = "true", dep, d.cfg.PlatformID
	_, err = d.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels,
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "true"}})
	if err != nil && !cerrdefs.IsConflict(err) && !cerrdefs.IsAlreadyExists(err) {
		return "", fmt.Errorf("create network %s: %w", name, err)
	}
	id, err = d.oldestNetwork(ctx, name)
	if err == nil && id == "" {
		err = fmt.Errorf("network %s vanished right after its creation", name)
		if ns, lerr := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))}); lerr == nil {
			for _, n := range ns {
				if n.Name != name {
					continue
				}
				if n.Labels[LabelPlatform] == "" && n.Labels[LabelManaged] == "true" && n.Labels[LabelDeployment] == dep {
					// This deployment's network from before platform ids
					// (deployment ids are random: it is ours): adopted.
					d.log.Warn("adopting a deployment network from before platform ids", "network", name)
					return n.ID, nil
				}
				err = fmt.Errorf("network %s belongs to %s, not this platform (%s): it is left alone", name, platformDesc(n.Labels[LabelPlatform]), d.cfg.PlatformID)
			}
		}
	}
	return id, err
}

// oldestNetwork finds the network called name ("" if none), removing
// unused younger duplicates.
func (d *Docker) oldestNetwork(ctx context.Context, name string) (string, error) {
	// Only this platform's networks: another platform's network of the
	// same name (or an unlabelled one from before platform ids) is
	// never chosen nor removed as a duplicate.
	ns, err := d.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name),
		filters.Arg("label", LabelPlatform+"="+d.cfg.PlatformID))})
	if err != nil {
		return "", fmt.Errorf("list networks: %w", err)
	}
	var same []network.Summary
	for _, n := range ns {
		if n.Name == name {
			same = append(same, n)
		}
	}
	if len(same) == 0 {
		return "", nil
	}
	sort.Slice(same, func(i, j int) bool {
		if !same[i].Created.Equal(same[j].Created) {
			return same[i].Created.Before(same[j].Created)
		}
		return same[i].ID < same[j].ID
	})
	for _, n := range same[1:] {
		if err := d.cli.NetworkRemove(ctx, n.ID); err != nil {
			d.log.Debug("duplicate deployment network kept (in use)", "network", name, "id", short(n.ID), "err", err)
		}
	}
	return same[0].ID, nil
}

func (d *Docker) ensureVolume(ctx context.Context, spec Spec) (string, map[string]string, error) {
	name := VolumeName(d.cfg.AllocatorID, spec.Instance.ID)
	labels := map[string]string{}
	for k, v := range d.cfg.Labels {
		labels[k] = v
	}
	labels[LabelManaged], labels[LabelAllocator], labels[LabelPlatform] = "true", d.cfg.AllocatorID, d.cfg.PlatformID
	labels[LabelInstance], labels[LabelDeployment] = spec.Instance.ID, spec.Instance.DeploymentID
	v, err := d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels})
	if err != nil {
		return "", nil, fmt.Errorf("create volume %s: %w", name, err)
	}
	// Creating an existing volume returns it as it is: it must be ours,
	// or this very instance's from before platform ids (adopted).
	if got := v.Labels[LabelPlatform]; got != d.cfg.PlatformID {
		if d.legacyOf(v.Labels, spec) {
			d.log.Warn("adopting a data volume from before platform ids: this platform assigns its instance", "volume", name,
				"instance", spec.Instance.ID, "note", "it keeps its old labels, so it is not collected after the instance goes: remove it by hand then")
			return name, labels, nil
		}
		return "", nil, fmt.Errorf("data volume %s already exists and belongs to %s, not to this platform (%s): it is left alone; give this allocator another --id, or remove the volume if that platform is gone",
			name, platformDesc(got), d.cfg.PlatformID)
	}
	return name, labels, nil
}

// Create creates and starts the node container of spec.
func (d *Docker) Create(ctx context.Context, spec Spec) (Workload, error) {
	in := spec.Instance

	if err := d.EnsureImage(ctx, in.Version); err != nil {
		return Workload{}, err
	}
	netID, err := d.ensureNetwork(ctx, in.DeploymentID, ImageRef(d.cfg.ImageRepo, in.Version))
	if err != nil {
		return Workload{}, err
	}
	vol, volLabels, err := d.ensureVolume(ctx, spec)
	if err != nil {
		return Workload{}, err
	}
	name := ContainerName(d.cfg.AllocatorID, in.ID)
	// A leftover container of the same name (a crash between create and
	// the first List) is replaced when it is this platform's; another
	// platform's (or an unlabelled one from before platform ids) is left
	// alone.
	if old, err := d.cli.ContainerInspect(ctx, name); err == nil {
		if got := old.Config.Labels[LabelPlatform]; got != d.cfg.PlatformID && !d.legacyOf(old.Config.Labels, spec) {
			return Workload{}, fmt.Errorf("container name %s is taken by %s, not this platform (%s): it is left alone; give this allocator another --id, or remove that container if its platform is gone",
				name, platformDesc(got), d.cfg.PlatformID)
		}
		if err := d.cli.ContainerRemove(ctx, old.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return Workload{}, fmt.Errorf("remove leftover container %s: %w", name, err)
		}
	} else if !cerrdefs.IsNotFound(err) {
		return Workload{}, fmt.Errorf("inspect leftover container %s: %w", name, err)
	}
	cfg := &container.Config{
		Image:        ImageRef(d.cfg.ImageRepo, in.Version),
		Hostname:     Alias(in.ID),
		Cmd:          []string{"--name", in.ID, "--cluster-name", in.DeploymentID, "--kind", in.Kind, "--data-dir", "/data", "--snapshot-root", node.ContainerSnapshotRoot},
		Labels:       d.labels(spec),
		ExposedPorts: nat.PortSet{nodePort: struct{}{}},
		StopSignal:   "SIGTERM",
	}
	res := spec.Resources
	pids := d.cfg.PidsLimit
	host := &container.HostConfig{
		PortBindings:   nat.PortMap{nodePort: []nat.PortBinding{{HostIP: d.cfg.PublishIP, HostPort: ""}}},
		NetworkMode:    container.NetworkMode(netID),
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": fmt.Sprintf("rw,noexec,nosuid,nodev,size=%dm", d.cfg.TmpfsSizeMB)},
		// The labels again on the mount: should the volume vanish before
		// the container is created, Docker re-creates it labelled.
		Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: vol, Target: "/data",
			VolumeOptions: &mount.VolumeOptions{Labels: volLabels}}},
		Resources: container.Resources{
			Memory:     res.MemoryBytes,
			MemorySwap: res.MemoryBytes, // no swap beyond the limit
			CPUShares:  res.CPUShares,
			NanoCPUs:   res.NanoCPUs,
			PidsLimit:  &pids,
		},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "2"}},
		Init:      nil,
	}
	if d.cfg.SnapshotDir != "" {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: d.cfg.SnapshotDir, Target: node.ContainerSnapshotRoot})
	}
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netID: {NetworkID: netID, Aliases: []string{Alias(in.ID)}},
	}}
	if spec.Security != nil {
		cfg.Cmd = append(cfg.Cmd, "--require-credentials")
	}
	if d.cfg.PeerEgress != nil {
		dir, err := d.cfg.PeerEgress(in.ID, in.DeploymentID)
		if err != nil {
			return Workload{}, err
		}
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: dir, Target: path.Dir(node.ContainerEgressSocket), ReadOnly: true})
		cfg.Cmd = append(cfg.Cmd, "--peer-egress", node.ContainerEgressSocket)
	}
	created, err := d.cli.ContainerCreate(ctx, cfg, host, netcfg, nil, name)
	if err != nil {
		return Workload{}, fmt.Errorf("create container %s: %w", name, err)
	}
	if spec.Security != nil {
		if err := d.DeliverCredentials(ctx, created.ID, *spec.Security); err != nil {
			return Workload{}, err
		}
	}
	if err := d.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return Workload{}, fmt.Errorf("start container %s: %w", name, err)
	}
	return d.Inspect(ctx, created.ID)
}

// Start starts a stopped container in place.
func (d *Docker) Start(ctx context.Context, id string) error {
	defer d.invalidate(id)
	if err := d.cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", short(id), err)
	}
	return nil
}

// Restart stops (SIGTERM, timeout, SIGKILL) and starts a container.
func (d *Docker) Restart(ctx context.Context, id string, timeout time.Duration) error {
	defer d.invalidate(id)
	secs := int(timeout.Seconds())
	if err := d.cli.ContainerRestart(ctx, id, container.StopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("restart container %s: %w", short(id), err)
	}
	return nil
}

// Remove stops gracefully and removes the container; the volume stays.
func (d *Docker) Remove(ctx context.Context, w Workload, timeout time.Duration) error {
	defer d.invalidate(w.ID)
	secs := int(timeout.Seconds())
	if w.Running {
		if err := d.cli.ContainerStop(ctx, w.ID, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("stop container %s: %w", short(w.ID), err)
		}
	}
	if err := d.cli.ContainerRemove(ctx, w.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove container %s: %w", short(w.ID), err)
	}
	d.dropNetworkIfUnused(ctx, w.Deployment, ImageRef(d.cfg.ImageRepo, w.Version))
	return nil
}

// dropNetworkIfUnused removes a deployment network nobody uses any more
// (another allocator of the host may still use it: then it stays).
func (d *Docker) dropNetworkIfUnused(ctx context.Context, dep, image string) {
	if dep == "" {
		return
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	id, err := d.oldestNetwork(ctx, d.networkName(dep))
	if err != nil || id == "" {
		return
	}
	// Under the lock: another allocator may be about to attach a node.
	unlock, err := d.lockNetwork(ctx, dep, image)
	if err != nil {
		d.log.Debug("deployment network kept", "network", d.networkName(dep), "err", err)
		return
	}
	defer unlock()
	n, err := d.cli.NetworkInspect(ctx, id, network.InspectOptions{})
	if err != nil || len(n.Containers) > 0 {
		return
	}
	if err := d.cli.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
		d.log.Debug("deployment network kept", "network", n.Name, "err", err)
	}
}

// Update changes CPU shares and quota of a container in place.
func (d *Docker) Update(ctx context.Context, id string, r Resources) error {
	defer d.invalidate(id)
	_, err := d.cli.ContainerUpdate(ctx, id, container.UpdateConfig{Resources: container.Resources{CPUShares: r.CPUShares, NanoCPUs: r.NanoCPUs}})
	if err != nil {
		return fmt.Errorf("update container %s: %w", short(id), err)
	}
	return nil
}

// Probe GETs the node's health endpoint through its published port.
func (d *Docker) Probe(ctx context.Context, w Workload) error {
	if w.Address == "" {
		return errors.New("no published port")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.Address+node.HealthPath, nil)
	if err != nil {
		return err
	}
	if d.platformAuth != nil {
		d.platformAuth(ctx, w.Deployment).SetAuth(req)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health endpoint answered %s", resp.Status)
	}
	return nil
}

// Events follows Docker events of this allocator's containers and
// signals each one, re-subscribing (with Since) after errors.
func (d *Docker) Events(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	go func() {
		defer close(out)
		since := time.Now()
		// Re-subscribing backs off exponentially (200 ms to 5 s), reset
		// by every event received.
		bo := backoff.NewExponentialBackOff()
		bo.InitialInterval, bo.MaxInterval = 200*time.Millisecond, 5*time.Second
		var wait time.Duration
		for ctx.Err() == nil {
			f := d.ownFilter()
			f.Add("type", string(events.ContainerEventType))
			msgs, errs := d.cli.Events(ctx, events.ListOptions{Filters: f, Since: strconv.FormatInt(since.Unix(), 10)})
		loop:
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-msgs:
					since = time.Unix(0, m.TimeNano)
					d.invalidate(m.Actor.ID)
					bo.Reset()
					select {
					case out <- struct{}{}:
					default:
					}
				case err := <-errs:
					if ctx.Err() != nil {
						return
					}
					wait = bo.NextBackOff()
					d.log.Warn("docker event stream lost; re-subscribing", "err", err, "in", wait)
					select {
					case out <- struct{}{}:
					default:
					}
					break loop
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}()
	return out
}

// Volumes lists this allocator's data volumes by instance.
func (d *Docker) Volumes(ctx context.Context) (map[string]string, error) {
	res, err := d.cli.VolumeList(ctx, volume.ListOptions{Filters: d.ownFilter()})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := map[string]string{}
	for _, v := range res.Volumes {
		if iid := v.Labels[LabelInstance]; iid != "" {
			out[iid] = v.Name
		}
	}
	return out, nil
}

// RemoveVolume deletes a data volume of this platform (another
// platform's volume of that name is refused).
func (d *Docker) RemoveVolume(ctx context.Context, name string) error {
	v, err := d.cli.VolumeInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if got := v.Labels[LabelPlatform]; got != d.cfg.PlatformID {
		return fmt.Errorf("volume %s belongs to %s, not this platform (%s): left alone", name, platformDesc(got), d.cfg.PlatformID)
	}
	if err := d.cli.VolumeRemove(ctx, name, false); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Logs reads a container's log (stdout and stderr, demultiplexed):
// the last o.Tail lines (engine.DefaultLogTail when 0), only those newer
// than o.Since when set, then new lines while o.Follow.
func (d *Docker) Logs(ctx context.Context, w Workload, o engine.LogOptions) (io.ReadCloser, error) {
	tail := o.Tail
	if tail <= 0 {
		tail = engine.DefaultLogTail
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: strconv.Itoa(tail)}
	if o.Since > 0 {
		opts.Since = strconv.FormatInt(time.Now().Add(-o.Since).Unix(), 10)
	}
	rc, err := d.cli.ContainerLogs(ctx, w.ID, opts)
	if err != nil {
		return nil, fmt.Errorf("container %s logs: %w", short(w.ID), err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		rc.Close()
		pw.CloseWithError(err)
	}()
	return pr, nil
}
