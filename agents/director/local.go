package director

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// IssueLocal gives the agents of this host (the director's own, as
// `paddock up` runs them) certificates for roles straight from the CA in
// stateDir, in the layout Join writes (tls/key.pem, tls/<role>.crt,
// tls/ca.pem, tls/join.json), so NewAgentTLS and renewal through the
// enrollment endpoint at enroll work the same. ZooKeeper credentials are
// already in stateDir (paddock init). zookeeper is the tunnel address.
func IssueLocal(stateDir, enroll, zookeeper, id string, roles []engine.Role, ttl time.Duration) (JoinInfo, error) {
	norm, err := NormalizeRoles(engine.RoleNames(roles))
	if err != nil {
		return JoinInfo{}, err
	}
	if ttl == 0 {
		ttl = DefaultCertTTL
	}
	if id == "" {
		if id, err = HostID(stateDir); err != nil {
			return JoinInfo{}, err
		}
	}
	ca, _, err := LoadOrCreateCA(stateDir)
	if err != nil {
		return JoinInfo{}, err
	}
	key, keyPEM, err := hostKey(stateDir)
	if err != nil {
		return JoinInfo{}, err
	}
	if err := os.MkdirAll(TLSDir(stateDir), 0o700); err != nil {
		return JoinInfo{}, err
	}
	_, keyFile, caFile := TLSFiles(stateDir, norm[0])
	if err := writeAtomic(keyFile, keyPEM, 0o600); err != nil {
		return JoinInfo{}, err
	}
	if err := writeAtomic(caFile, ca.CertPEM, 0o644); err != nil {
		return JoinInfo{}, err
	}
	var na time.Time
	for _, role := range norm {
		if _, err := engine.LoadCredential(engine.CredentialFile(stateDir, engine.Role(role))); err != nil {
			return JoinInfo{}, fmt.Errorf("role %s: %w", role, err)
		}
		cert, err := ca.Issue(key.Public(), stunnel.Leaf{Identity: stunnel.Identity{Role: role, ID: id}, TTL: ttl})
		if err != nil {
			return JoinInfo{}, err
		}
		certFile, _, _ := TLSFiles(stateDir, role)
		if err := writeAtomic(certFile, cert, 0o644); err != nil {
			return JoinInfo{}, err
		}
		c, _ := stunnel.ParseCerts(cert)
		na = c[0].NotAfter
	}
	ji := JoinInfo{Director: enroll, ID: id, Roles: norm, ZooKeeper: zookeeper, JoinedAt: time.Now().UTC(), NotAfter: na}
	b, _ := json.MarshalIndent(ji, "", "  ")
	return ji, writeAtomic(joinInfoFile(stateDir), append(b, '\n'), 0o600)
}
