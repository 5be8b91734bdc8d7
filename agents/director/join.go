package director

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/stunnel"
)

// TLSDir is where a host keeps its key, CA and certificates.
func TLSDir(stateDir string) string { return filepath.Join(stateDir, "tls") }

// TLSFiles are the certificate, key and CA files of role under stateDir.
func TLSFiles(stateDir string, role string) (cert, key, ca string) {
	d := TLSDir(stateDir)
	return filepath.Join(d, role+".crt"), filepath.Join(d, "key.pem"), filepath.Join(d, "ca.pem")
}

// CRLFile is where a host keeps the director's revocation list.
func CRLFile(stateDir string) string { return filepath.Join(TLSDir(stateDir), "ca.crl") }

// FetchCRL downloads the director's revocation list (signed by the CA
// pinned by fingerprint) into tls/ca.crl.
func FetchCRL(ctx context.Context, director, pin, stateDir string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, directorURL(director, "/v1/crl"), nil)
	if err != nil {
		return err
	}
	resp, err := pinnedClient(pin, nil).Do(req)
	if err != nil {
		return fmt.Errorf("fetch the revocation list from %s: %w", director, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch the revocation list from %s: HTTP %d", director, resp.StatusCode)
	}
	return writeAtomic(CRLFile(stateDir), b, 0o644)
}

// JoinInfo is what a host remembers of its enrollment (tls/join.json).
type JoinInfo struct {
	Director  string    `json:"director"`
	ID        string    `json:"id"`
	Roles     []string  `json:"roles"`
	ZooKeeper string    `json:"zookeeper"`
	JoinedAt  time.Time `json:"joined_at"`
	NotAfter  time.Time `json:"not_after"`
}

func joinInfoFile(stateDir string) string { return filepath.Join(TLSDir(stateDir), "join.json") }

// LoadJoinInfo reads tls/join.json.
func LoadJoinInfo(stateDir string) (JoinInfo, error) {
	var ji JoinInfo
	b, err := os.ReadFile(joinInfoFile(stateDir))
	if err != nil {
		return ji, fmt.Errorf("this host has not joined a platform (%w): run with --join DIRECTOR --token T", err)
	}
	return ji, json.Unmarshal(b, &ji)
}

// HostID is this host's id under stateDir: kept in tls/host-id, made
// from the host name and a random suffix on first use.
func HostID(stateDir string) (string, error) {
	f := filepath.Join(TLSDir(stateDir), "host-id")
	if b, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	h, _ := os.Hostname()
	id := sanitizeID(h)
	if len(id) > 40 {
		id = id[:40]
	}
	id += "-" + engine.RandomToken(3)
	if err := os.MkdirAll(TLSDir(stateDir), 0o700); err != nil {
		return "", err
	}
	return id, os.WriteFile(f, []byte(id+"\n"), 0o600)
}

// pinnedClient is an HTTPS client trusting only the CA of fingerprint
// pin (presenting cert when given).
func pinnedClient(pin string, cert *tls.Certificate) *http.Client {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verified below against the pinned CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				if stunnel.Fingerprint(c) == pin {
					ca = c
				}
			}
			if ca == nil {
				return fmt.Errorf("the director's certificate is not signed by the CA pinned in the token (sha256 %s…): wrong address, or a token of another platform", pin[:12])
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil {
				return fmt.Errorf("director certificate: %w", err)
			}
			id, err := stunnel.IdentityOf(cs.PeerCertificates[0])
			if err != nil || id.Role != "director" {
				return fmt.Errorf("the enrollment endpoint presents %v, not a director certificate", id)
			}
			return nil
		},
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}}
}

func postJSON(ctx context.Context, hc *http.Client, url string, in, out any) error {
	b, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			return &RefusedError{Status: resp.StatusCode, Message: ae.Error}
		}
		return &RefusedError{Status: resp.StatusCode, Message: strings.TrimSpace(string(body))}
	}
	return json.Unmarshal(body, out)
}

// RefusedError is the director refusing a request, with its reason.
type RefusedError struct {
	Status  int
	Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("director refused (HTTP %d): %s", e.Status, e.Message)
}

func directorURL(addr, path string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, strings.TrimPrefix(DefaultEnrollAddr, ":"))
	}
	return "https://" + addr + path
}

// Join enrolls this host with the director at directorAddr (host or
// host:port of the enrollment endpoint) using a roles token: it makes a
// key and CSR, receives one certificate per role and the roles' ZooKeeper
// credentials, and stores them under stateDir: tls/key.pem (0600),
// tls/<role>.crt, tls/ca.pem, tls/join.json and
// engine.CredentialFile(stateDir, role). A token lacking one of roles is
// refused with an error naming the missing roles.
func Join(ctx context.Context, directorAddr, token string, roles []string, stateDir string) (JoinInfo, error) {
	tok, err := ParseToken(token)
	if err != nil {
		return JoinInfo{}, err
	}
	norm, err := NormalizeRoles(roles)
	if err != nil {
		return JoinInfo{}, err
	}
	id, err := HostID(stateDir)
	if err != nil {
		return JoinInfo{}, fmt.Errorf("host id: %w", err)
	}
	key, keyPEM, err := hostKey(stateDir)
	if err != nil {
		return JoinInfo{}, err
	}
	csr, err := stunnel.CreateCSR(key, stunnel.Identity{Role: norm[0], ID: id}, nil, nil)
	if err != nil {
		return JoinInfo{}, err
	}
	var resp EnrollResponse
	err = postJSON(ctx, pinnedClient(tok.CAFingerprint, nil), directorURL(directorAddr, "/v1/enroll"),
		EnrollRequest{Token: token, ID: id, Roles: norm, CSR: string(csr)}, &resp)
	if err != nil {
		return JoinInfo{}, fmt.Errorf("join the platform through the director at %s: %w", directorAddr, err)
	}
	// Check what came back before writing anything.
	if cas, err := stunnel.ParseCerts([]byte(resp.CA)); err != nil || stunnel.Fingerprint(cas[0]) != tok.CAFingerprint {
		return JoinInfo{}, errors.New("the director sent a CA that does not match the token's pin: refusing it")
	}
	dir := TLSDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return JoinInfo{}, err
	}
	_, keyFile, caFile := TLSFiles(stateDir, norm[0])
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return JoinInfo{}, err
	}
	if err := writeAtomic(caFile, []byte(resp.CA), 0o644); err != nil {
		return JoinInfo{}, err
	}
	for _, role := range norm {
		cert, ok := resp.Certificates[role]
		cred, okc := resp.Credentials[role]
		if !ok || !okc {
			return JoinInfo{}, fmt.Errorf("the director sent no certificate or credential for role %s", role)
		}
		certFile, _, _ := TLSFiles(stateDir, role)
		if err := writeAtomic(certFile, []byte(cert), 0o644); err != nil {
			return JoinInfo{}, err
		}
		if err := engine.SaveCredential(engine.CredentialFile(stateDir, engine.Role(role)), cred); err != nil {
			return JoinInfo{}, err
		}
	}
	if err := FetchCRL(ctx, directorAddr, tok.CAFingerprint, stateDir); err != nil {
		return JoinInfo{}, err
	}
	ji := JoinInfo{Director: directorAddr, ID: id, Roles: norm, ZooKeeper: resp.ZooKeeper, JoinedAt: time.Now().UTC(), NotAfter: resp.NotAfter}
	b, _ := json.MarshalIndent(ji, "", "  ")
	return ji, writeAtomic(joinInfoFile(stateDir), append(b, '\n'), 0o600)
}

// hostKey is the host's key (tls/key.pem), shared by its role
// certificates: kept when present, so joining for another role later
// does not invalidate the certificates already held.
func hostKey(stateDir string) (crypto.Signer, []byte, error) {
	_, keyFile, _ := TLSFiles(stateDir, "")
	if b, err := os.ReadFile(keyFile); err == nil {
		k, err := stunnel.ParseKey(b)
		if err != nil {
			return nil, nil, fmt.Errorf("host key %s: %w (remove it to make a new one; then join again for every role)", keyFile, err)
		}
		return k, b, nil
	}
	return stunnel.GenerateKey()
}

func writeAtomic(file string, b []byte, mode os.FileMode) error {
	return agentkit.WriteFileAtomic(file, b, mode)
}

// Renew asks the director for a fresh certificate of role, presenting
// the current one, with a new key, and writes it in place.
func Renew(ctx context.Context, stateDir, role string) (time.Time, error) {
	ji, err := LoadJoinInfo(stateDir)
	if err != nil {
		return time.Time{}, err
	}
	certFile, keyFile, caFile := TLSFiles(stateDir, role)
	cur, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return time.Time{}, fmt.Errorf("current certificate of %s: %w", role, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return time.Time{}, err
	}
	cas, err := stunnel.ParseCerts(caPEM)
	if err != nil {
		return time.Time{}, err
	}
	leaf, _ := x509.ParseCertificate(cur.Certificate[0])
	id, err := stunnel.IdentityOf(leaf)
	if err != nil {
		return time.Time{}, err
	}
	// The key is shared by the host's role certificates: keep it, and
	// prove possession with a CSR.
	key, err := stunnel.ParseKey(mustRead(keyFile))
	if err != nil {
		return time.Time{}, err
	}
	csr, err := stunnel.CreateCSR(key, id, nil, nil)
	if err != nil {
		return time.Time{}, err
	}
	var resp RenewResponse
	if err := postJSON(ctx, pinnedClient(stunnel.Fingerprint(cas[0]), &cur), directorURL(ji.Director, "/v1/renew"), RenewRequest{CSR: string(csr)}, &resp); err != nil {
		return time.Time{}, fmt.Errorf("renew the %s certificate at %s: %w", role, ji.Director, err)
	}
	if err := writeAtomic(certFile, []byte(resp.Certificate), 0o644); err != nil {
		return time.Time{}, err
	}
	return resp.NotAfter, nil
}

func mustRead(f string) []byte {
	b, _ := os.ReadFile(f)
	return b
}

// AgentTLS is an agent's mutual-TLS identity for one role: the tunnel
// client to ZooKeeper, kept renewed, with the revocation list refreshed.
type AgentTLS struct {
	Role     string
	StateDir string
	// CRLInterval is how often the revocation list is fetched (default
	// one minute).
	CRLInterval time.Duration
	Loader      *stunnel.Loader
	Client      *stunnel.Client
	log         *slog.Logger
}

// NewAgentTLS loads the role's certificate from stateDir and builds the
// tunnel client that admits only director certificates on the other end.
func NewAgentTLS(stateDir, role string, metrics *stunnel.Metrics, log *slog.Logger) (*AgentTLS, error) {
	if log == nil {
		log = slog.Default()
	}
	certFile, keyFile, caFile := TLSFiles(stateDir, role)
	crl := CRLFile(stateDir)
	if _, err := os.Stat(crl); err != nil {
		crl = ""
	}
	l, err := stunnel.NewFileLoader(certFile, keyFile, caFile, crl)
	if err != nil {
		return nil, fmt.Errorf("TLS identity of %s: %w (join first: --join DIRECTOR --token T)", role, err)
	}
	c, err := stunnel.NewClient(stunnel.ClientConfig{Options: stunnel.Options{Name: "zookeeper", Loader: l,
		Allow: stunnel.Allow{Roles: []string{"director"}}, Metrics: metrics}, ServerName: "zookeeper", Logger: log})
	if err != nil {
		return nil, err
	}
	return &AgentTLS{Role: role, StateDir: stateDir, Loader: l, Client: c, log: log}, nil
}

// Dialer is what engine.Options.Dialer takes: each ZooKeeper address of
// the connection string is a director tunnel (host:2191).
func (a *AgentTLS) Dialer() func(network, address string, timeout time.Duration) (net.Conn, error) {
	return a.Client.ZooKeeperDialer()
}

// Run renews the certificate at two thirds of its life (retrying every
// minute on failure), refreshes the revocation list, and reloads on
// SIGHUP, until ctx ends.
func (a *AgentTLS) Run(ctx context.Context) {
	go a.Loader.WatchReload(ctx, 0, a.log)
	go a.refreshCRL(ctx)
	for {
		m := a.Loader.Current()
		wait := time.Until(renewAt(m.Leaf.NotBefore, m.Leaf.NotAfter))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		na, err := backoff.Retry(ctx, func() (time.Time, error) {
			na, err := Renew(ctx, a.StateDir, a.Role)
			if err == nil {
				err = a.Loader.Reload()
			}
			return na, err
		}, backoff.WithBackOff(backoff.NewConstantBackOff(time.Minute)), backoff.WithMaxElapsedTime(0),
			backoff.WithNotify(func(err error, next time.Duration) {
				a.log.Error("certificate renewal failed; retrying", "role", a.Role, "err", err, "in", next)
			}))
		if err != nil {
			return // ctx ended
		}
		a.log.Info("certificate renewed", "role", a.Role, "not_after", na)
	}
}

func readFile(f string) ([]byte, error) {
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f, err)
	}
	return b, nil
}

// fetchCRLOnce fetches the revocation list unless another agent of this
// host (they share the state dir) did within half the interval: under a
// lock on tls/ca.crl.lock, so one host asks the director about once
// per interval however many roles it runs.
func (a *AgentTLS) fetchCRLOnce(ctx context.Context, every time.Duration) error {
	crl := CRLFile(a.StateDir)
	lock, err := os.OpenFile(crl+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if st, err := os.Stat(crl); err == nil && time.Since(st.ModTime()) < every/2 {
		return nil // fresh: another agent of this host fetched it
	}
	ji, err := LoadJoinInfo(a.StateDir)
	if err != nil {
		return err
	}
	_, _, caFile := TLSFiles(a.StateDir, a.Role)
	caPEM, err := readFile(caFile)
	if err != nil {
		return err
	}
	cas, err := stunnel.ParseCerts(caPEM)
	if err != nil {
		return err
	}
	return FetchCRL(ctx, ji.Director, stunnel.Fingerprint(cas[0]), a.StateDir)
}

func (a *AgentTLS) refreshCRL(ctx context.Context) {
	every := a.CRLInterval
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := a.fetchCRLOnce(ctx, every); err != nil {
			a.log.Warn("revocation list refresh failed; keeping the previous one", "err", err)
			continue
		}
		if a.Loader.CRLFile == "" {
			continue // loaded before the host had a list: picked up at the next start
		}
		if err := a.Loader.Reload(); err != nil {
			a.log.Warn("revocation list reload failed; keeping the previous one", "err", err)
		}
	}
}
