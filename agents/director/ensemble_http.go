package director

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"paddock/stunnel"
)

// EnsembleChange is POST /v1/ensemble/add and /v1/ensemble/remove.
type EnsembleChange struct {
	Server ZKServer `json:"server"`
}

// requireDirector admits only a verified director certificate.
func (d *Director) requireDirector(r *http.Request) (stunnel.Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return stunnel.Identity{}, errors.New("ensemble changes need a director certificate (join with --roles director)")
	}
	roots := x509.NewCertPool()
	roots.AddCert(d.ca.Cert)
	leaf := r.TLS.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return stunnel.Identity{}, fmt.Errorf("certificate refused: %w", err)
	}
	id, err := stunnel.IdentityOf(leaf)
	if err != nil {
		return id, err
	}
	if id.Role != "director" {
		return id, fmt.Errorf("%s may not change the ZooKeeper ensemble: only directors may", id)
	}
	return id, nil
}

// members is where the director reaches the ensemble: every member's
// client address as last seen, so that reconfig works while any quorum
// of servers lives (the director's own store names only its local one).
func (d *Director) members() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.known) == 0 {
		return strings.Split(d.cfg.Store.Servers, ",")
	}
	return append([]string(nil), d.known...)
}

func (d *Director) remember(st EnsembleStatus) {
	var addrs []string
	for _, m := range st.Members {
		addrs = append(addrs, m.Client)
	}
	if len(addrs) == 0 {
		return
	}
	d.mu.Lock()
	d.known = addrs
	d.mu.Unlock()
}

// superConn opens a ZooKeeper session as the super user (reconfig).
func (d *Director) superConn(ctx context.Context) (*zk.Conn, error) {
	if d.cfg.SuperPassword == "" {
		return nil, errors.New("the director has no ZooKeeper super password (--zk-super-password): it cannot change the ensemble")
	}
	servers := d.members()
	conn, ev, err := zk.Connect(servers, 10*time.Second, zk.WithLogger(zkNoLog{}))
	if err != nil {
		return nil, err
	}
	deadline := time.After(20 * time.Second)
	for conn.State() != zk.StateHasSession {
		select {
		case <-ev:
		case <-deadline:
			conn.Close()
			return nil, errors.New("no ZooKeeper session for reconfig within 20s")
		case <-ctx.Done():
			conn.Close()
			return nil, ctx.Err()
		}
	}
	if err := conn.AddAuth("digest", []byte("super:"+d.cfg.SuperPassword)); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

type zkNoLog struct{}

func (zkNoLog) Printf(string, ...any) {}

func (d *Director) ensembleStatus(w http.ResponseWriter, r *http.Request) {
	if _, err := d.requireDirector(r); err != nil {
		writeJSON(w, http.StatusForbidden, apiError{Error: err.Error()})
		return
	}
	conn := d.store.Conn()
	if d.cfg.SuperPassword != "" {
		sc, err := d.superConn(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
			return
		}
		defer sc.Close()
		conn = sc
	}
	st, err := Ensemble(r.Context(), conn)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
		return
	}
	d.remember(st)
	writeJSON(w, http.StatusOK, st)
}

func (d *Director) ensembleChange(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := d.requireDirector(r)
		if err != nil {
			writeJSON(w, http.StatusForbidden, apiError{Error: err.Error()})
			return
		}
		var req EnsembleChange
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil || req.Server.ID <= 0 {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "malformed ensemble change: want {\"server\":{\"id\":N,…}}"})
			return
		}
		conn, err := d.superConn(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
			return
		}
		defer conn.Close()
		if add {
			err = AddServer(r.Context(), conn, req.Server)
		} else {
			err = RemoveServer(r.Context(), conn, req.Server.ID)
		}
		if err != nil {
			writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
			return
		}
		d.log.Info("ZooKeeper ensemble changed", "add", add, "server", req.Server.Line(), "by", id.String())
		st, err := Ensemble(r.Context(), conn)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
			return
		}
		d.remember(st)
		writeJSON(w, http.StatusOK, st)
	}
}

// directorClient is an HTTPS client of the director presenting this
// host's director certificate.
func directorClient(stateDir string) (*http.Client, JoinInfo, error) {
	ji, err := LoadJoinInfo(stateDir)
	if err != nil {
		return nil, ji, err
	}
	certFile, keyFile, caFile := TLSFiles(stateDir, "director")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, ji, fmt.Errorf("director certificate: %w (join with --roles director)", err)
	}
	caPEM, err := readFile(caFile)
	if err != nil {
		return nil, ji, err
	}
	cas, err := stunnel.ParseCerts(caPEM)
	if err != nil {
		return nil, ji, err
	}
	return pinnedClient(stunnel.Fingerprint(cas[0]), &cert), ji, nil
}

// EnsembleOf asks the director for the ensemble's status.
func EnsembleOf(ctx context.Context, stateDir string) (EnsembleStatus, error) {
	var st EnsembleStatus
	hc, ji, err := directorClient(stateDir)
	if err != nil {
		return st, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, directorURL(ji.Director, "/v1/ensemble"), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		_ = json.Unmarshal(b, &ae)
		return st, &RefusedError{Status: resp.StatusCode, Message: ae.Error}
	}
	return st, json.Unmarshal(b, &st)
}

// GrowEnsemble adds a ZooKeeper server on this (director-role) host: it
// asks the director for the current members, starts a server in dir
// naming them and itself (next free id, given ports), then has the
// director add it by dynamic reconfiguration.
func GrowEnsemble(ctx context.Context, stateDir, dir string, self ZKServer, superPassword string) (*LocalZK, EnsembleStatus, error) {
	cur, err := EnsembleOf(ctx, stateDir)
	if err != nil {
		return nil, cur, fmt.Errorf("read the ensemble from the director: %w", err)
	}
	var members []ZKServer
	for _, m := range cur.Members {
		members = append(members, m.ZKServer)
		if m.ID >= self.ID {
			self.ID = m.ID + 1
		}
	}
	z, err := StartZKServer(ctx, ZKServerConfig{Dir: dir, Self: self, Ensemble: members, SuperPassword: superPassword})
	if err != nil {
		return nil, cur, err
	}
	hc, ji, err := directorClient(stateDir)
	if err != nil {
		z.Stop()
		return nil, cur, err
	}
	var st EnsembleStatus
	if err := postJSON(ctx, hc, directorURL(ji.Director, "/v1/ensemble/add"), EnsembleChange{Server: self}, &st); err != nil {
		z.Stop()
		return nil, cur, fmt.Errorf("add ZooKeeper server %d through the director: %w", self.ID, err)
	}
	return z, st, nil
}

// ShrinkEnsemble has the director remove server id from the ensemble.
func ShrinkEnsemble(ctx context.Context, stateDir string, id int) (EnsembleStatus, error) {
	var st EnsembleStatus
	hc, ji, err := directorClient(stateDir)
	if err != nil {
		return st, err
	}
	err = postJSON(ctx, hc, directorURL(ji.Director, "/v1/ensemble/remove"), EnsembleChange{Server: ZKServer{ID: id}}, &st)
	return st, err
}
