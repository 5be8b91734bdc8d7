package allocator

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// DefaultImageRepo is the repository of node images.
const DefaultImageRepo = "paddock/node"

// NodeUID is the numeric user nodes run as (scratch images have no
// /etc/passwd).
const NodeUID = 65532

// ImageRef is <repo>:<version>.
func ImageRef(repo, version string) string {
	if repo == "" {
		repo = DefaultImageRepo
	}
	return repo + ":" + version
}

// IsStaticBinary tells whether the ELF file at path needs no dynamic
// loader (a CGO_ENABLED=0 build), so it can run FROM scratch.
func IsStaticBinary(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// StaticHint tells the operator how to get a binary usable in images.
const StaticHint = "build a static binary with `CGO_ENABLED=0 go build -o paddock .` and run `./paddock image build`"

// BuildOptions say what image to build.
type BuildOptions struct {
	// Binary is the static paddock binary to pack.
	Binary  string
	Repo    string
	Version string
	// Labels are added to the image (paddock.managed=true is always set).
	Labels map[string]string
}

// BinaryDigestLabel on a node image holds the SHA-256 of the binary it
// was built from, so a host whose binary changed rebuilds its images
// instead of running nodes of an older build under the same tag.
const BinaryDigestLabel = "paddock.image.binary-sha256"

// BinaryDigest is the hex SHA-256 of the file at path.
func BinaryDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ImageUpToDate tells whether image ref exists and was built from
// binary (its BinaryDigestLabel). With no binary to compare (""), any
// existing image is up to date. A missing image is (false, nil).
func ImageUpToDate(ctx context.Context, cli *client.Client, ref, binary string) (bool, error) {
	img, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if binary == "" {
		return true, nil
	}
	digest, err := BinaryDigest(binary)
	if err != nil {
		return false, err
	}
	return img.Config != nil && img.Config.Labels[BinaryDigestLabel] == digest, nil
}

// Dockerfile renders the node image's Dockerfile.
// ImageLabelPrefix namespaces the build's labels on the image.
const ImageLabelPrefix = "paddock.image."

func Dockerfile(version string, labels map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FROM scratch\n")
	fmt.Fprintf(&b, "COPY paddock /paddock\n")
	fmt.Fprintf(&b, "COPY --chown=%d:%d rootfs/ /\n", NodeUID, NodeUID)
	// Containers inherit their image's labels: an image shared by several
	// platforms (one tag per version on a host) must not carry one
	// platform's or one test's ownership labels, or `paddock down` and
	// test clean-ups of one would remove the others' containers. Caller
	// labels are kept as image provenance under paddock.image.*.
	for _, k := range sortedKeys(labels) {
		fmt.Fprintf(&b, "LABEL %q=%q\n", ImageLabelPrefix+k, labels[k])
	}
	fmt.Fprintf(&b, "LABEL \"paddock.managed\"=\"true\" \"paddock.node.version\"=%q\n", version)
	fmt.Fprintf(&b, "USER %d:%d\n", NodeUID, NodeUID)
	fmt.Fprintf(&b, "EXPOSE 9200\n")
	fmt.Fprintf(&b, "HEALTHCHECK --interval=2s --timeout=2s --start-period=2s --retries=3 CMD [\"/paddock\", \"node\", \"healthcheck\", \"--log-level\", \"error\"]\n")
	fmt.Fprintf(&b, "ENTRYPOINT [\"/paddock\", \"node\", \"--version\", %q, \"--log-format\", \"json\"]\n", version)
	return b.String()
}

// nodeDirs are the empty directories of a node image the node writes to
// (owned by NodeUID).
var nodeDirs = []ScratchDir{{"rootfs/", 0o755}, {"rootfs/data/", 0o755}, {"rootfs/snapshots/", 0o755}, {"rootfs/tmp/", 0o1777}}

// ScratchDir is an empty directory of a build context.
type ScratchDir struct {
	Name string
	Mode int64
}

// ScratchImage is an image FROM scratch around one static paddock
// binary, /paddock: the node images and the platform image of `paddock
// up --containers` are both built by BuildScratchImage.
type ScratchImage struct {
	Ref    string
	Binary string
	// Dockerfile starts FROM scratch and copies paddock to /paddock; the
	// binary's digest label (BinaryDigestLabel) is appended.
	Dockerfile string
	// Dirs are added to the build context (COPY them in Dockerfile).
	Dirs []ScratchDir
}

// buildContext is the in-memory tar: Dockerfile, the binary and the
// empty directories.
func buildContext(binary, dockerfile string, dirs []ScratchDir) (io.Reader, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("read binary %s: %w", binary, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	add := func(h *tar.Header, body []byte) error {
		h.ModTime = now
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	if err := add(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))}, []byte(dockerfile)); err != nil {
		return nil, err
	}
	if err := add(&tar.Header{Name: "paddock", Mode: 0o755, Size: int64(len(bin))}, bin); err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if err := add(&tar.Header{Name: d.Name, Typeflag: tar.TypeDir, Mode: d.Mode}, nil); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// BuildImage builds the node image <repo>:<version>.
func BuildImage(ctx context.Context, cli *client.Client, opts BuildOptions, progress io.Writer) error {
	if opts.Version == "" {
		return errors.New("image build needs a version")
	}
	return BuildScratchImage(ctx, cli, ScratchImage{Ref: ImageRef(opts.Repo, opts.Version), Binary: opts.Binary,
		Dockerfile: Dockerfile(opts.Version, opts.Labels), Dirs: nodeDirs}, progress)
}

// BuildScratchImage builds img FROM scratch with the classic builder (no
// registry, no pull). Build errors arrive inside the response stream
// and are returned.
func BuildScratchImage(ctx context.Context, cli *client.Client, img ScratchImage, progress io.Writer) error {
	static, err := IsStaticBinary(img.Binary)
	if err != nil {
		return err
	}
	if !static {
		return fmt.Errorf("%s is dynamically linked and cannot run FROM scratch: %s", img.Binary, StaticHint)
	}
	ref := img.Ref
	digest, err := BinaryDigest(img.Binary)
	if err != nil {
		return err
	}
	bctx, err := buildContext(img.Binary, img.Dockerfile+fmt.Sprintf("LABEL %q=%q\n", BinaryDigestLabel, digest), img.Dirs)
	if err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, bctx, build.ImageBuildOptions{
		Tags: []string{ref}, Remove: true, ForceRemove: true, Dockerfile: "Dockerfile",
		Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build %s: %w (is the Docker engine running? check `docker info`)", ref, err)
	}
	defer resp.Body.Close()
	if progress == nil {
		progress = io.Discard
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("build %s: read build output: %w", ref, err)
		}
		if m.Error != nil || m.ErrorText != "" {
			msg := m.ErrorText
			if m.Error != nil && m.Error.Message != "" {
				msg = m.Error.Message
			}
			return fmt.Errorf("build %s: %s", ref, msg)
		}
		if m.Stream != "" {
			_, _ = io.WriteString(progress, m.Stream)
		}
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		return fmt.Errorf("build %s finished but the image is not there: %w", ref, err)
	}
	return nil
}

// buildMessage is one line of the build response stream (the subset of
// Docker's jsonmessage the builder sends).
type buildMessage struct {
	Stream    string `json:"stream"`
	ErrorText string `json:"error"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// BuildImages builds the node image <repo>:<version> of each version
// from binary, one after the other, with the local Docker engine (the
// environment's DOCKER_HOST), and returns the references built.
func BuildImages(ctx context.Context, binary, repo string, versions []string, progress io.Writer, log *slog.Logger) ([]string, error) {
	static, err := IsStaticBinary(binary)
	if err != nil {
		return nil, err
	}
	if !static {
		return nil, fmt.Errorf("%s is dynamically linked and cannot run FROM scratch: %s (or pass --binary PATH)", binary, StaticHint)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w (set DOCKER_HOST or start the Docker engine)", err)
	}
	defer cli.Close()
	var built []string
	for _, v := range versions {
		ref := ImageRef(repo, v)
		log.Info("building node image", "image", ref, "binary", binary)
		if err := BuildImage(ctx, cli, BuildOptions{Binary: binary, Repo: repo, Version: v}, progress); err != nil {
			return built, err
		}
		built = append(built, ref)
	}
	return built, nil
}
