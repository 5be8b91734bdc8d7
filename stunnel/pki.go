package stunnel

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// GenerateKey makes an ECDSA P-256 key (fast handshakes, understood by
// OpenSSL/stunnel) and returns it with its PKCS#8 PEM.
func GenerateKey() (crypto.Signer, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return k, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseKey reads a PEM private key (PKCS#8, EC or PKCS#1).
func ParseKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no private key in PEM data")
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, err
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, errors.New("private key cannot sign")
			}
			return s, nil
		case "EC PRIVATE KEY":
			return x509.ParseECPrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			return x509.ParsePKCS1PrivateKey(blk.Bytes)
		}
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// NewCA creates a self-signed root CA valid for ttl, with a fresh key.
// It returns the CA and its key's PEM (keep it on disk, mode 0600).
func NewCA(name string, ttl time.Duration) (*CA, []byte, error) {
	key, keyPEM, err := GenerateKey()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"paddock"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, keyPEM, nil
}

// LoadCA reads a CA from its certificate and key PEM.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	key, err := ParseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !certs[0].IsCA {
		return nil, errors.New("CA certificate is not a CA")
	}
	return &CA{Cert: certs[0], Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0].Raw})}, nil
}

// Fingerprint is the SHA-256 of a certificate's DER, hex: what roles
// tokens pin.
func Fingerprint(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(h[:])
}

// ParseCerts reads every certificate of a PEM bundle.
func ParseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in PEM data")
	}
	return out, nil
}

// Leaf describes a certificate to issue.
type Leaf struct {
	Identity Identity
	// DNSNames and IPs are added as SANs (servers: the names clients
	// dial; stunnel's checkHost looks at them).
	DNSNames []string
	IPs      []net.IP
	TTL      time.Duration
	// NotAfter overrides TTL when set (tests make expired certificates).
	NotBefore, NotAfter time.Time
}

// Issue signs a certificate for pub with the leaf's identity in the URI
// SAN and in OU/CN, usable for both TLS client and server auth.
func (ca *CA) Issue(pub crypto.PublicKey, l Leaf) ([]byte, error) {
	if l.Identity.Role == "" || l.Identity.ID == "" {
		return nil, errors.New("a certificate needs a role and an id")
	}
	now := time.Now()
	nb, na := l.NotBefore, l.NotAfter
	if nb.IsZero() {
		nb = now.Add(-5 * time.Minute)
	}
	if na.IsZero() {
		ttl := l.TTL
		if ttl == 0 {
			ttl = 24 * time.Hour
		}
		na = now.Add(ttl)
	}
	if na.After(ca.Cert.NotAfter) {
		na = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: l.Identity.ID, OrganizationalUnit: []string{l.Identity.Role}, Organization: []string{"paddock"}},
		NotBefore:    nb,
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{l.Identity.URI()},
		DNSNames:     append([]string{RoleDNSName(l.Identity.Role), IDDNSName(l.Identity)}, plainDNS(l.DNSNames)...),
		IPAddresses:  l.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CreateCSR makes a PEM certificate signing request for key naming id.
func CreateCSR(key crypto.Signer, id Identity, dnsNames []string, ips []net.IP) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: id.ID, OrganizationalUnit: []string{id.Role}},
		URIs:        []*url.URL{id.URI()},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseCSR reads and checks the signature of a PEM CSR.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("no CERTIFICATE REQUEST in PEM data")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature: %w", err)
	}
	return csr, nil
}

// CRL signs a certificate revocation list naming serials, valid for ttl.
func (ca *CA) CRL(number int64, serials []*big.Int, ttl time.Duration) ([]byte, error) {
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(number), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(ttl),
		RevokedCertificateEntries: entries,
	}, ca.Cert, ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

// plainDNS drops requested names in the identity namespaces (.role.paddock,
// .id.paddock): only Issue puts those in, from the identity itself, so a
// CSR cannot claim another role for tools that match host names.
func plainDNS(names []string) []string {
	var out []string
	for _, n := range names {
		l := strings.ToLower(n)
		if strings.HasSuffix(l, ".role.paddock") || strings.HasSuffix(l, ".id.paddock") {
			continue
		}
		out = append(out, n)
	}
	return out
}

// IssueServer signs a plain TLS server certificate for dnsNames (no
// paddock identity in it: for names the public dials, such as a
// deployment's host name at the proxy).
func (ca *CA) IssueServer(pub crypto.PublicKey, dnsNames []string, ttl time.Duration) (*x509.Certificate, []byte, error) {
	if len(dnsNames) == 0 {
		return nil, nil, errors.New("a server certificate needs at least one DNS name")
	}
	now := time.Now()
	na := now.Add(ttl)
	if na.After(ca.Cert.NotAfter) {
		na = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: dnsNames[0], Organization: []string{"paddock"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     na,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, der, err
}
