package platform

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"paddock/agents/agentkit"
)

// Files in the state dir.
const (
	PidFile    = "up.pid"
	StatusFile = "up.json"
	LogFile    = "logs/up.log"
	APIKeyFile = "credentials/api-key"
	// LabelUp marks every Docker object of the allocators (and platform
	// containers) up started, so Down removes exactly those.
	LabelUp = "paddock.up"
)

// Service is one service of the platform as up reports it.
type Service struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Addr    string `json:"addr,omitempty"`
	Metrics string `json:"metrics,omitempty"`
	State   string `json:"state"`
	Error   string `json:"error,omitempty"`
}

// Status is <state-dir>/up.json: up's progress and where everything
// listens.
type Status struct {
	Pid       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	Step      string    `json:"step"`
	Ready     bool      `json:"ready"`
	Stopping  bool      `json:"stopping,omitempty"`
	Error     string    `json:"error,omitempty"`
	ZooKeeper string    `json:"zookeeper"`
	// Tunnel is the director's mTLS tunnel the agents reach ZooKeeper
	// through (empty: they connect directly).
	Tunnel   string `json:"zookeeper_tunnel,omitempty"`
	APIURL   string `json:"api_url,omitempty"`
	ProxyURL string `json:"proxy_url,omitempty"`
	// ProxyHTTPSURL serves deployments over TLS with certificates from
	// the platform CA (CAFile: give it to clients as their trust root).
	ProxyHTTPSURL string `json:"proxy_https_url,omitempty"`
	CAFile        string `json:"ca_file,omitempty"`
	// ObjectStore is the S3 endpoint of the platform's object store (the
	// default snapshot repository).
	ObjectStore string    `json:"object_store,omitempty"`
	APIKeyFile  string    `json:"api_key_file,omitempty"`
	Label       string    `json:"label"`
	Containers  bool      `json:"containers,omitempty"`
	Missing     []string  `json:"not_available,omitempty"`
	Services    []Service `json:"services"`
}

// ReadStatus reads up.json of the state dir.
func ReadStatus(stateDir string) (Status, error) {
	var st Status
	b, err := os.ReadFile(filepath.Join(stateDir, StatusFile))
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(b, &st)
}

// recorder keeps the status and writes up.json on every change; saves
// are serialised so an older state never overwrites a newer one.
type recorder struct {
	dir      string
	log      *slog.Logger
	progress io.Writer
	mu       sync.Mutex
	saveMu   sync.Mutex
	st       Status
}

func (s *recorder) save() {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	b, _ := json.MarshalIndent(s.st, "", "  ")
	s.mu.Unlock()
	_ = agentkit.WriteFileAtomic(filepath.Join(s.dir, StatusFile), b, 0o600)
}

// step records and shows progress.
func (s *recorder) step(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.set(func(st *Status) { st.Step = msg })
	s.log.Info("up: " + msg)
	if s.progress != nil {
		fmt.Fprintf(s.progress, "· %s\n", msg)
	}
}

// set changes the status under the lock and saves it.
func (s *recorder) set(fn func(*Status)) {
	s.mu.Lock()
	fn(&s.st)
	s.mu.Unlock()
	s.save()
}

// get returns a copy of the status.
func (s *recorder) get() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Services = append([]Service(nil), s.st.Services...)
	return st
}

// service changes (or adds) the named service.
func (s *recorder) service(name string, fn func(*Service)) {
	s.set(func(st *Status) {
		for i := range st.Services {
			if st.Services[i].Name == name {
				fn(&st.Services[i])
				return
			}
		}
		u := Service{Name: name}
		fn(&u)
		st.Services = append(st.Services, u)
	})
}

// PrintWhere tells the operator where everything listens.
func PrintWhere(w io.Writer, st Status) {
	fmt.Fprintf(w, "paddock is up\n")
	fmt.Fprintf(w, "  API        %s\n", st.APIURL)
	if st.ProxyURL != "" {
		fmt.Fprintf(w, "  proxy      %s   (curl http://<deployment-id>.localhost:%s/)\n", st.ProxyURL, portOf(st.ProxyURL))
	}
	if st.ProxyHTTPSURL != "" {
		fmt.Fprintf(w, "  HTTPS      %s   (curl --cacert %s https://<deployment-id>.localhost:%s/)\n", st.ProxyHTTPSURL, st.CAFile, portOf(st.ProxyHTTPSURL))
	}
	if st.Tunnel != "" {
		fmt.Fprintf(w, "  ZooKeeper  %s (loopback only; agents and CLI through the director's mTLS tunnel %s)\n", st.ZooKeeper, st.Tunnel)
	} else {
		fmt.Fprintf(w, "  ZooKeeper  %s\n", st.ZooKeeper)
	}
	fmt.Fprintf(w, "  admin key  %s\n", st.APIKeyFile)
	if st.ObjectStore != "" {
		fmt.Fprintf(w, "  snapshots  %s (SeaweedFS, the default repository)\n", st.ObjectStore)
	}
	var allocs []string
	for _, s := range st.Services {
		if s.Kind == "allocator" {
			allocs = append(allocs, s.Name)
		}
	}
	sort.Strings(allocs)
	fmt.Fprintf(w, "  allocators %s\n", strings.Join(allocs, ", "))
	for _, s := range st.Services {
		if s.Kind == "director" && s.Addr != "" {
			fmt.Fprintf(w, "  director   %s\n", s.Addr)
		}
		if s.Kind == "proxy" && s.Addr != "" && "http://"+s.Addr != st.ProxyURL {
			fmt.Fprintf(w, "  proxy      http://%s (%s)\n", s.Addr, s.Name)
		}
	}
	for _, m := range st.Missing {
		fmt.Fprintf(w, "  note       %s\n", m)
	}
	fmt.Fprintf(w, "console: paddock console · status: paddock status · stop: paddock down\n")
}

func portOf(url string) string {
	if i := strings.LastIndex(url, ":"); i >= 0 {
		return url[i+1:]
	}
	return ""
}
