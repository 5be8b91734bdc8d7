package stunnel

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// TunnelStatus is what the status endpoint shows of one tunnel.
type TunnelStatus struct {
	Name              string           `json:"name"`
	Mode              string           `json:"mode"`
	Listen            string           `json:"listen,omitempty"`
	Target            string           `json:"target,omitempty"`
	Allow             string           `json:"allow"`
	Open              int64            `json:"open_connections"`
	Identity          string           `json:"identity,omitempty"`
	CertNotAfter      time.Time        `json:"cert_not_after"`
	CertGeneration    int64            `json:"cert_generation"`
	LastReloadError   string           `json:"last_reload_error,omitempty"`
	LastReloadAt      time.Time        `json:"last_reload_at"`
	HandshakeFailures map[string]int64 `json:"handshake_failures,omitempty"`
}

type tunnelState struct {
	mode, name, target string
	allow              Allow
	loader             *Loader
	open               atomic.Int64

	mu     sync.Mutex
	listen string
	fails  map[string]int64
}

func (t *tunnelState) init(mode, name, target string, allow Allow, l *Loader) {
	t.mode, t.name, t.target, t.allow, t.loader = mode, name, target, allow, l
	t.fails = map[string]int64{}
}

func (t *tunnelState) listening(addr string) {
	t.mu.Lock()
	t.listen = addr
	t.mu.Unlock()
}

func (t *tunnelState) failed(reason string) {
	t.mu.Lock()
	t.fails[reason]++
	t.mu.Unlock()
}

func (t *tunnelState) snapshot() TunnelStatus {
	t.mu.Lock()
	st := TunnelStatus{Name: t.name, Mode: t.mode, Listen: t.listen, Target: t.target, Allow: t.allow.String(),
		Open: t.open.Load(), HandshakeFailures: map[string]int64{}}
	for k, v := range t.fails {
		st.HandshakeFailures[k] = v
	}
	t.mu.Unlock()
	if m := t.loader.Current(); m != nil {
		st.Identity = m.Identity.String()
		st.CertNotAfter = m.Leaf.NotAfter
		st.CertGeneration = m.Generation
	}
	err, at := t.loader.LastError()
	st.LastReloadAt = at
	if err != nil {
		st.LastReloadError = err.Error()
	}
	return st
}

// Statuser is a tunnel end that reports its status.
type Statuser interface{ Status() TunnelStatus }

// StatusHandler serves the status of tunnels as JSON; it answers 503
// when a tunnel's last certificate reload failed (the old certificate is
// still in use, but an operator should look).
func StatusHandler(tunnels ...Statuser) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		out := struct {
			Tunnels []TunnelStatus `json:"tunnels"`
		}{}
		code := http.StatusOK
		for _, t := range tunnels {
			st := t.Status()
			if st.LastReloadError != "" {
				code = http.StatusServiceUnavailable
			}
			out.Tunnels = append(out.Tunnels, st)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	})
}
