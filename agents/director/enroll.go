package director

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// EnrollRequest is what a joining host sends to POST /v1/enroll.
type EnrollRequest struct {
	Token string   `json:"token"`
	ID    string   `json:"id"`
	Roles []string `json:"roles"`
	// CSR (PEM) proves possession of the host's key; the director signs
	// one certificate per role for its public key.
	CSR string `json:"csr"`
}

// EnrollResponse carries the host's certificates and credentials.
type EnrollResponse struct {
	ID           string                       `json:"id"`
	CA           string                       `json:"ca"`
	Certificates map[string]string            `json:"certificates"`
	Credentials  map[string]engine.Credential `json:"credentials"`
	// ZooKeeper is the tunnel address to reach ZooKeeper through.
	ZooKeeper string    `json:"zookeeper"`
	NotAfter  time.Time `json:"not_after"`
}

// RenewRequest is POST /v1/renew, authenticated by the client
// certificate being renewed.
type RenewRequest struct {
	CSR string `json:"csr"`
}

// RenewResponse is the renewed certificate.
type RenewResponse struct {
	Certificate string    `json:"certificate"`
	CA          string    `json:"ca"`
	NotAfter    time.Time `json:"not_after"`
}

type apiError struct {
	Error string `json:"error"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (d *Director) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/enroll", d.enroll)
	mux.HandleFunc("POST /v1/renew", d.renew)
	mux.HandleFunc("GET /v1/ensemble", d.ensembleStatus)
	mux.HandleFunc("POST /v1/ensemble/add", d.ensembleChange(true))
	mux.HandleFunc("POST /v1/ensemble/remove", d.ensembleChange(false))
	mux.HandleFunc("GET /v1/crl", d.serveCRL)
	mux.HandleFunc("GET /v1/ca", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(d.ca.CertPEM)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (d *Director) enroll(w http.ResponseWriter, r *http.Request) {
	var req EnrollRequest
	fail := func(code int, result string, err error) {
		d.m.enrollments.WithLabelValues("enroll", result).Inc()
		d.log.Warn("enrollment refused", "host", req.ID, "roles", req.Roles, "remote", r.RemoteAddr, "err", err)
		writeJSON(w, code, apiError{Error: err.Error()})
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		fail(http.StatusBadRequest, "bad_request", fmt.Errorf("malformed enrollment request: %w", err))
		return
	}
	if !idPattern.MatchString(req.ID) {
		fail(http.StatusBadRequest, "bad_request", fmt.Errorf("host id %q: use lowercase letters, digits and dashes (--id)", req.ID))
		return
	}
	roles, err := NormalizeRoles(req.Roles)
	if err != nil {
		fail(http.StatusBadRequest, "bad_request", err)
		return
	}
	tok, err := ParseToken(req.Token)
	if err != nil {
		fail(http.StatusUnauthorized, "bad_token", err)
		return
	}
	if tok.CAFingerprint != stunnel.Fingerprint(d.ca.Cert) {
		fail(http.StatusUnauthorized, "bad_token", errors.New("roles token pins another CA: it was created for another platform"))
		return
	}
	csr, err := stunnel.ParseCSR([]byte(req.CSR))
	if err != nil {
		fail(http.StatusBadRequest, "bad_request", err)
		return
	}
	var creds = map[string]engine.Credential{}
	for _, role := range roles {
		c, ok := d.cfg.Credentials[engine.Role(role)]
		if !ok || c.User == "" {
			fail(http.StatusServiceUnavailable, "no_credential", fmt.Errorf("the director holds no ZooKeeper credential for role %s: run it on the host where `paddock init` ran (credentials/%s.json)", role, role))
			return
		}
		creds[role] = c
	}
	if _, err := redeemToken(r.Context(), d.store, tok, roles, req.ID); err != nil {
		var mr *MissingRolesError
		switch {
		case errors.As(err, &mr):
			fail(http.StatusForbidden, "missing_role", err)
		case errors.Is(err, ErrTokenInvalid):
			fail(http.StatusUnauthorized, "bad_token", err)
		default:
			fail(http.StatusServiceUnavailable, "error", fmt.Errorf("check the token: %w", err))
		}
		return
	}
	resp := EnrollResponse{ID: req.ID, CA: string(d.ca.CertPEM), Certificates: map[string]string{}, Credentials: creds,
		ZooKeeper: d.tunnelFor(r)}
	for _, role := range roles {
		cert, err := d.ca.Issue(csr.PublicKey, stunnel.Leaf{Identity: stunnel.Identity{Role: role, ID: req.ID},
			DNSNames: csr.DNSNames, IPs: csr.IPAddresses, TTL: d.cfg.CertTTL})
		if err != nil {
			fail(http.StatusInternalServerError, "error", err)
			return
		}
		d.m.issued.WithLabelValues(role).Inc()
		d.recordIssued(r.Context(), cert)
		resp.Certificates[role] = string(cert)
		if c, _ := stunnel.ParseCerts(cert); len(c) > 0 {
			resp.NotAfter = c[0].NotAfter
		}
	}
	d.m.enrollments.WithLabelValues("enroll", "ok").Inc()
	d.log.Info("host enrolled", "host", req.ID, "roles", roles, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, resp)
}

// tunnelFor is the ZooKeeper tunnel address as the client sees the
// director: the host it dialed, the tunnel's port.
func (d *Director) tunnelFor(r *http.Request) string {
	if d.tunnel == "" {
		return ""
	}
	_, port, _ := net.SplitHostPort(d.tunnel)
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	return net.JoinHostPort(host, port)
}

func (d *Director) renew(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, result string, err error) {
		d.m.enrollments.WithLabelValues("renew", result).Inc()
		d.log.Warn("renewal refused", "remote", r.RemoteAddr, "err", err)
		writeJSON(w, code, apiError{Error: err.Error()})
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		fail(http.StatusUnauthorized, "no_certificate", errors.New("renewal needs the current certificate as TLS client certificate; an expired host joins again with a roles token"))
		return
	}
	leaf := r.TLS.PeerCertificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(d.ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		fail(http.StatusUnauthorized, "bad_certificate", fmt.Errorf("certificate not valid for renewal (%v): join again with a roles token", err))
		return
	}
	id, err := stunnel.IdentityOf(leaf)
	if err != nil {
		fail(http.StatusUnauthorized, "bad_certificate", err)
		return
	}
	if d.isRevoked(leaf.SerialNumber) {
		fail(http.StatusUnauthorized, "revoked", fmt.Errorf("certificate %s of %s is revoked: the host must join again with a new roles token", leaf.SerialNumber, id))
		return
	}
	var req RenewRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		fail(http.StatusBadRequest, "bad_request", err)
		return
	}
	csr, err := stunnel.ParseCSR([]byte(req.CSR))
	if err != nil {
		fail(http.StatusBadRequest, "bad_request", err)
		return
	}
	cert, err := d.ca.Issue(csr.PublicKey, stunnel.Leaf{Identity: id, DNSNames: csr.DNSNames, IPs: csr.IPAddresses, TTL: d.cfg.CertTTL})
	if err != nil {
		fail(http.StatusInternalServerError, "error", err)
		return
	}
	d.m.issued.WithLabelValues(id.Role).Inc()
	d.recordIssued(r.Context(), cert)
	d.m.enrollments.WithLabelValues("renew", "ok").Inc()
	c, _ := stunnel.ParseCerts(cert)
	d.log.Info("certificate renewed", "identity", id.String())
	writeJSON(w, http.StatusOK, RenewResponse{Certificate: string(cert), CA: string(d.ca.CertPEM), NotAfter: c[0].NotAfter})
}
