package allocator

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock/engine"
)

func TestComputeResources(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		size, capacity, cpus int
		wantShares, wantNano int64
	}{
		{"quarter of the host", 1024, 4096, 2, 1024, 500_000_000},
		{"half of the host", 2048, 4096, 2, 2048, 1_000_000_000},
		{"whole host", 4096, 4096, 4, 4096, 4_000_000_000},
		{"over capacity is capped at host CPUs", 8192, 4096, 2, 8192, 2_000_000_000},
		{"tiny node keeps a floor", 64, 1 << 20, 1, 64, minNanoCPUs},
		{"unknown host leaves the quota unset", 1024, 4096, 0, 1024, 0},
		{"shares are capped", 1 << 20, 1 << 20, 1, maxCPUShares, 1_000_000_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ComputeResources(tc.size, tc.capacity, tc.cpus)
			if r.MemoryBytes != int64(tc.size)<<20 {
				t.Errorf("memory = %d, want %d", r.MemoryBytes, int64(tc.size)<<20)
			}
			if r.CPUShares != tc.wantShares {
				t.Errorf("shares = %d, want %d", r.CPUShares, tc.wantShares)
			}
			if r.NanoCPUs != tc.wantNano {
				t.Errorf("nano CPUs = %d, want %d", r.NanoCPUs, tc.wantNano)
			}
		})
	}
	t.Run("2:1 memory gives 2:1 CPU", func(t *testing.T) {
		big, small := ComputeResources(32768, 65536, 8), ComputeResources(16384, 65536, 8)
		if big.CPUShares != 2*small.CPUShares || big.NanoCPUs != 2*small.NanoCPUs {
			t.Fatalf("big %+v small %+v: not 2:1", big, small)
		}
	})
}

func TestDefaultCapacity(t *testing.T) {
	if got := DefaultCapacityMB(10000); got != 8500 {
		t.Fatalf("DefaultCapacityMB(10000) = %d, want 8500", got)
	}
}

func inst(id string, size int, created time.Time) engine.Instance {
	return engine.Instance{ID: id, DeploymentID: "d1", Kind: engine.KindElasticsearch, Version: "8.17.0", SizeMB: size, CreatedAt: created}
}

func TestAdmit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name         string
		desired      []engine.Instance
		invalid      map[string]error
		running      map[string]bool
		capacity     int
		wantAdmitted []string
		wantRejected []string
		wantUsed     int
	}{
		{name: "all fit", desired: []engine.Instance{inst("a", 512, t0), inst("b", 512, t0.Add(time.Second))}, capacity: 1024,
			wantAdmitted: []string{"a", "b"}, wantUsed: 1024},
		{name: "oldest first", desired: []engine.Instance{inst("new", 1024, t0.Add(time.Minute)), inst("old", 1024, t0)}, capacity: 1024,
			wantAdmitted: []string{"old"}, wantRejected: []string{"new"}, wantUsed: 1024},
		{name: "running keeps its place after a capacity cut", desired: []engine.Instance{inst("old", 1024, t0), inst("run", 1024, t0.Add(time.Hour))},
			running: map[string]bool{"run": true}, capacity: 1024, wantAdmitted: []string{"run"}, wantRejected: []string{"old"}, wantUsed: 1024},
		{name: "running over capacity is not evicted", desired: []engine.Instance{inst("a", 2048, t0)}, running: map[string]bool{"a": true},
			capacity: 1024, wantAdmitted: []string{"a"}, wantUsed: 2048},
		{name: "invalid is rejected and uses nothing", desired: []engine.Instance{inst("bad", 512, t0), inst("ok", 512, t0)},
			invalid: map[string]error{"bad": errors.New("malformed")}, capacity: 512, wantAdmitted: []string{"ok"}, wantRejected: []string{"bad"}, wantUsed: 512},
		{name: "too big alone", desired: []engine.Instance{inst("huge", 8192, t0)}, capacity: 4096, wantRejected: []string{"huge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := map[string]engine.Instance{}
			for _, in := range tc.desired {
				d[in.ID] = in
			}
			a := admit(d, tc.invalid, tc.running, tc.capacity)
			for _, id := range tc.wantAdmitted {
				if !a.admitted[id] {
					t.Errorf("%s not admitted (rejected: %q)", id, a.rejected[id])
				}
			}
			for _, id := range tc.wantRejected {
				if a.rejected[id] == "" {
					t.Errorf("%s not rejected", id)
				}
			}
			if len(a.admitted)+len(a.rejected) != len(tc.desired) {
				t.Errorf("admitted %v + rejected %v do not cover %d instances", a.admitted, a.rejected, len(tc.desired))
			}
			if a.usedMB != tc.wantUsed {
				t.Errorf("used = %d, want %d", a.usedMB, tc.wantUsed)
			}
		})
	}
}

func TestValidateInstance(t *testing.T) {
	ok := inst("i1", 512, time.Time{})
	for _, tc := range []struct {
		name   string
		mutate func(*engine.Instance)
		iid    string
		want   string
	}{
		{"valid", func(*engine.Instance) {}, "i1", ""},
		{"id mismatch", func(i *engine.Instance) { i.ID = "other" }, "i1", "does not match"},
		{"bad id", func(i *engine.Instance) { i.ID = "" }, "a/b", "container name"},
		{"no deployment", func(i *engine.Instance) { i.DeploymentID = "" }, "i1", "deployment id"},
		{"unknown kind", func(i *engine.Instance) { i.Kind = "logstash" }, "i1", "unknown kind"},
		{"bad version", func(i *engine.Instance) { i.Version = "" }, "i1", "invalid version"},
		{"too small", func(i *engine.Instance) { i.SizeMB = 10 }, "i1", "too small"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.mutate(&in)
			err := ValidateInstance(in, tc.iid)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNeedsRecreate(t *testing.T) {
	w := Workload{Version: "8.17.0", SizeMB: 512, Kind: engine.KindElasticsearch, Generation: 1}
	for _, tc := range []struct {
		name   string
		mutate func(*engine.Instance)
		want   string
	}{
		{"same", func(*engine.Instance) {}, ""},
		{"older generation is ignored", func(i *engine.Instance) { i.Generation = 0 }, ""},
		{"higher generation", func(i *engine.Instance) { i.Generation = 2 }, "restart asked (generation 1 → 2)"},
		{"upgrade", func(i *engine.Instance) { i.Version = "8.18.0" }, "version 8.17.0 → 8.18.0"},
		{"resize", func(i *engine.Instance) { i.SizeMB = 1024 }, "size 512 MB → 1024 MB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := inst("i1", 512, time.Time{})
			in.Generation = 1
			tc.mutate(&in)
			if got := needsRecreate(w, in); got != tc.want {
				t.Fatalf("needsRecreate = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLedgerPersistsGraceStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "l.json")
	l, err := openLedger(file)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, marked := l.mark("v1", t0); !marked {
		t.Fatal("first mark not reported")
	}
	if got, marked := l.mark("v1", t0.Add(time.Hour)); marked || !got.Equal(t0) {
		t.Fatalf("second mark moved the grace start: %v %v", got, marked)
	}
	if err := l.save(); err != nil {
		t.Fatal(err)
	}
	l2, err := openLedger(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := l2.mark("v1", t0.Add(2*time.Hour)); !got.Equal(t0) {
		t.Fatalf("reloaded ledger lost the grace start: %v", got)
	}
	if !l2.clear("v1") || l2.clear("v1") {
		t.Fatal("clear should report once")
	}
	if err := os.WriteFile(file, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openLedger(file); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("malformed ledger: %v", err)
	}
}

func TestDockerfile(t *testing.T) {
	df := Dockerfile("8.18.0", map[string]string{LabelTest: "x"})
	for _, want := range []string{
		"FROM scratch",
		"USER 65532:65532",
		`ENTRYPOINT ["/paddock", "node", "--version", "8.18.0"`,
		`HEALTHCHECK --interval=2s`,
		`CMD ["/paddock", "node", "healthcheck"`,
		`"paddock.image.paddock.test"="x"`,
		`"paddock.managed"="true"`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q:\n%s", want, df)
		}
	}
	// Ownership labels never go on the image: containers inherit them.
	if strings.Contains(df, `LABEL "paddock.test"`) {
		t.Errorf("Dockerfile puts an ownership label on the shared image:\n%s", df)
	}
}

func TestConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{ID: "a1", Zone: "z", StateDir: "/tmp/x"}, ""},
		{"no id", Config{Zone: "z", StateDir: "/tmp/x"}, "id"},
		{"no zone", Config{ID: "a1", StateDir: "/tmp/x"}, "zone"},
		{"unspecified publish ip", Config{ID: "a1", Zone: "z", StateDir: "/tmp/x", PublishIP: "0.0.0.0"}, "never 0.0.0.0"},
		{"bad runtime", Config{ID: "a1", Zone: "z", StateDir: "/tmp/x", Runtime: "podman"}, "unknown runtime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.defaults()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.cfg.PublishIP != "127.0.0.1" || tc.cfg.SnapshotDir != "/tmp/x/snapshots" || tc.cfg.Runtime != RuntimeDocker {
					t.Fatalf("defaults not applied: %+v", tc.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOwnCredentialIsStable(t *testing.T) {
	dir := t.TempDir()
	c1, err := OwnCredential(dir, "a1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := OwnCredential(dir, "a1")
	if err != nil {
		t.Fatal(err)
	}
	if c1 != c2 || c1.User != "allocator-a1" || c1.Password == "" {
		t.Fatalf("credentials differ or malformed: %+v %+v", c1, c2)
	}
	st, err := os.Stat(OwnCredentialFile(dir, "a1"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credential file mode: %v %v", st.Mode(), err)
	}
}
