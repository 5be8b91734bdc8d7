package s3server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"paddock/engine/freeport"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Module and Version are what scripts/setup.sh builds weed from.
const (
	Module  = "github.com/seaweedfs/seaweedfs"
	Version = "v0.0.0-20261109003541-7506e5f91cd6"
)

var validBucket = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Binary finds weed: $PADDOCK_TOOLS/weed, then ~/.cache/paddock/bin/weed
// (where scripts/setup.sh puts it), then weed on PATH.
func Binary() (string, error) {
	var tried []string
	if d := os.Getenv("PADDOCK_TOOLS"); d != "" {
		tried = append(tried, filepath.Join(d, "weed"))
	}
	if c, err := os.UserCacheDir(); err == nil {
		tried = append(tried, filepath.Join(c, "paddock", "bin", "weed"))
	}
	for _, p := range tried {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the SeaweedFS weed binary is not installed (looked in %v and PATH); scripts/setup.sh builds %s@%s", tried, Module, Version)
}

// Options configure a weed server.
type Options struct {
	// Dir holds weed's data, its S3 identity file and its log.
	Dir string
	// IP is the address weed listens on and advertises (default 127.0.0.1).
	IP string
	// Port is the S3 port (0: a free port). weed's other ports (master,
	// volume, filer and their gRPC ports) are taken free on IP.
	Port int
	// AccessKey and SecretKey are the one S3 identity (required).
	AccessKey, SecretKey string
	// Buckets are created once the store serves.
	Buckets []string
	// Binary overrides Binary().
	Binary string
	// VolumeSizeLimitMB caps weed's volumes (default 256: small disks).
	VolumeSizeLimitMB int
	// Internal are weed's other ports; free ones are taken when zero.
	// Start fills them in: a restart on the same Dir reuses them (the
	// master remembers its address).
	Internal InternalPorts
}

// InternalPorts are weed's ports other than S3. Every one is given:
// weed's default for an unset gRPC port is the HTTP port + 10000, which
// is past 65535 for a port from the upper ephemeral range.
type InternalPorts struct {
	Master, MasterGRPC, Volume, VolumeGRPC, Filer, FilerGRPC, S3GRPC int
}

func (p *InternalPorts) fields() []*int {
	return []*int{&p.Master, &p.MasterGRPC, &p.Volume, &p.VolumeGRPC, &p.Filer, &p.FilerGRPC, &p.S3GRPC}
}

// Server is a running weed.
type Server struct {
	// Endpoint is the S3 endpoint, http://IP:Port.
	Endpoint string
	// Host is IP:Port.
	Host string
	opts Options
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the process's exit (after done)
	once sync.Once
}

// Start launches weed and returns once it serves signed S3 requests and
// the buckets exist. Stop it with Stop.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("s3server: Options.Dir is required")
	}
	if o.AccessKey == "" || o.SecretKey == "" {
		return nil, errors.New("s3server: an access key and a secret key are required (the object store never runs anonymous)")
	}
	for _, b := range o.Buckets {
		if !validBucket.MatchString(b) {
			return nil, fmt.Errorf("s3server: bucket name %q is not valid for S3: 3 to 63 lowercase letters, digits, dots and dashes, starting and ending with a letter or digit", b)
		}
	}
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	if o.VolumeSizeLimitMB == 0 {
		o.VolumeSizeLimitMB = 256
	}
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"data", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	cfg := filepath.Join(o.Dir, "s3.json")
	if err := writeIdentity(cfg, o.AccessKey, o.SecretKey); err != nil {
		return nil, err
	}
	// Ports taken free can be taken by another process between our
	// probe and weed's bind (tests start several stores at once): when
	// weed exits before serving and it was given such ports, try again
	// on fresh ones.
	for attempt := 1; ; attempt++ {
		s, err := launch(ctx, o, bin, cfg)
		if err == nil || !errors.Is(err, errExited) || !o.picksPorts() || attempt == 3 {
			return s, err
		}
	}
}

// errExited: weed ended before it served.
var errExited = errors.New("weed exited")

// picksPorts says whether some port is left to be taken free.
func (o Options) picksPorts() bool {
	if o.Port == 0 {
		return true
	}
	for _, f := range o.Internal.fields() {
		if *f == 0 {
			return true
		}
	}
	return false
}

// launch starts weed once, on the given ports and free ones for the
// others, and waits until it serves.
func launch(ctx context.Context, o Options, bin, cfg string) (*Server, error) {
	// Free ports for those not given (all on a first start; a restart
	// passes back what Options() returned).
	want := 0
	for _, f := range o.Internal.fields() {
		if *f == 0 {
			want++
		}
	}
	if o.Port == 0 {
		want++
	}
	ports, err := freePorts(o.IP, want)
	if err != nil {
		return nil, err
	}
	for _, f := range append(o.Internal.fields(), &o.Port) {
		if *f == 0 {
			*f, ports = ports[0], ports[1:]
		}
	}
	in := o.Internal
	p := func(port int) string { return strconv.Itoa(port) }
	args := []string{
		"-logdir=" + filepath.Join(o.Dir, "logs"),
		"server",
		"-dir=" + filepath.Join(o.Dir, "data"), "-ip=" + o.IP, "-ip.bind=" + o.IP,
		"-master.port=" + p(in.Master), "-master.port.grpc=" + p(in.MasterGRPC), "-master.telemetry=false",
		// One master: elect it at once on a restart (default 10 s).
		"-master.electionTimeout=1s",
		"-master.volumeSizeLimitMB=" + strconv.Itoa(o.VolumeSizeLimitMB),
		"-volume.port=" + p(in.Volume), "-volume.port.grpc=" + p(in.VolumeGRPC), "-volume.max=0",
		// No peers to drain to: stop in 1 s, not 10.
		"-volume.preStopSeconds=1",
		"-filer", "-filer.port=" + p(in.Filer), "-filer.port.grpc=" + p(in.FilerGRPC),
		"-filer.localSocket=" + filepath.Join(o.Dir, "filer.sock"),
		"-s3", "-s3.port=" + p(o.Port), "-s3.port.grpc=" + p(in.S3GRPC), "-s3.port.iceberg=0", "-s3.port.lance=0",
		"-s3.config=" + cfg, "-s3.localSocket=" + filepath.Join(o.Dir, "s3.sock"),
	}
	logf, err := os.OpenFile(filepath.Join(o.Dir, "weed.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{Endpoint: "http://" + net.JoinHostPort(o.IP, strconv.Itoa(o.Port)), Host: net.JoinHostPort(o.IP, strconv.Itoa(o.Port)),
		opts: o, cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, fmt.Errorf("weed did not serve S3 on %s: %w (see %s)", s.Endpoint, err, filepath.Join(o.Dir, "weed.log"))
	}
	return s, nil
}

// Client returns an S3 client of the store with its identity.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.Host, &minio.Options{Creds: credentials.NewStaticV4(s.opts.AccessKey, s.opts.SecretKey, ""),
		Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
}

func (s *Server) waitReady(ctx context.Context) error {
	cli, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	wait := 50 * time.Millisecond
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		_, last = cli.ListBuckets(rctx)
		if last == nil {
			// Buckets need the filer and a writable volume: create
			// them (and retry) before saying the store serves.
			for _, b := range s.opts.Buckets {
				if last = ensureBucket(rctx, cli, b); last != nil {
					break
				}
			}
			if last == nil {
				last = probeWrite(rctx, cli, s.opts.Buckets)
			}
		}
		rcancel()
		if last == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%w: %v (last probe: %v)", errExited, s.err, last)
		case <-ctx.Done():
			return fmt.Errorf("%w (last probe: %v)", ctx.Err(), last)
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

func ensureBucket(ctx context.Context, cli *minio.Client, b string) error {
	ok, err := cli.BucketExists(ctx, b)
	if err != nil || ok {
		return err
	}
	if err := cli.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		if c := minio.ToErrorResponse(err).Code; c != "BucketAlreadyOwnedByYou" && c != "BucketAlreadyExists" {
			return err
		}
	}
	return nil
}

// probeWrite writes and removes a small object in the first bucket: the
// volume servers have joined the master once that works.
func probeWrite(ctx context.Context, cli *minio.Client, buckets []string) error {
	if len(buckets) == 0 {
		return nil
	}
	const key = ".paddock-ready"
	if _, err := cli.PutObject(ctx, buckets[0], key, strings.NewReader("ok"), 2, minio.PutObjectOptions{}); err != nil {
		return err
	}
	return cli.RemoveObject(ctx, buckets[0], key, minio.RemoveObjectOptions{})
}

// stopGrace is how long Stop waits after SIGTERM. The volume server
// (1 s pre-stop) and the filer are down well within it; weed's master
// and S3 gateway can keep retrying each other for long after, holding
// nothing that is not already on disk.
const stopGrace = 4 * time.Second

// Stop ends weed (SIGTERM, then SIGKILL after stopGrace) and waits for
// it. Its data stays in Dir: Start again on the same Dir and Port
// serves it.
func (s *Server) Stop() {
	s.once.Do(func() {
		pg := -s.cmd.Process.Pid
		_ = syscall.Kill(pg, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(pg, syscall.SIGKILL)
			<-s.done
		}
		// weed's gRPC servers also listen on unix sockets in /tmp
		// (hard-coded, whatever TMPDIR says), named by port; a killed
		// weed leaves them behind.
		in := s.opts.Internal
		for role, port := range map[string]int{"master": in.MasterGRPC, "volume": in.VolumeGRPC, "filer": in.FilerGRPC, "s3": in.S3GRPC} {
			_ = os.Remove(fmt.Sprintf("/tmp/seaweedfs-%s-grpc-%d.sock", role, port))
		}
	})
}

// Done is closed when weed has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Options returns the options the server runs with (Port filled in).
func (s *Server) Options() Options { return s.opts }

// writeIdentity writes weed's S3 config: one identity with every action.
func writeIdentity(file, access, secret string) error {
	cfg := map[string]any{"identities": []any{map[string]any{
		"name":        "paddock",
		"credentials": []any{map[string]string{"accessKey": access, "secretKey": secret}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// freePorts returns n distinct free TCP ports on ip, outside the kernel's
// ephemeral range (see package freeport).
func freePorts(ip string, n int) ([]int, error) {
	return freeport.Pick(ip, n)
}
