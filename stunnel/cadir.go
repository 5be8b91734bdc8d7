package stunnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CALifetime is a root's validity; leaf certificates are short-lived.
const CALifetime = 10 * 365 * 24 * time.Hour

// LoadOrCreateCA reads the CA kept in dir (ca.pem, and ca.key with mode
// 0600), creating both on first use; created says it did. It is the one
// CA loader (the director's CA, `paddock tunnel cert`'s local CA): a CA
// with one of its two files missing, or a key readable by others, is
// refused and never re-created, because a new CA would invalidate every
// certificate the old one signed.
func LoadOrCreateCA(dir, name string) (ca *CA, created bool, err error) {
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	cb, cerr := os.ReadFile(certFile)
	kb, kerr := os.ReadFile(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("CA key %s is readable by others (mode %s): chmod 600 it", keyFile, st.Mode().Perm())
		}
		ca, err := LoadCA(cb, kb)
		if err != nil {
			return nil, false, fmt.Errorf("CA in %s: %w (restore it from backup; a new CA would invalidate every certificate)", dir, err)
		}
		return ca, false, nil
	case cerr == nil || kerr == nil:
		return nil, false, fmt.Errorf("CA in %s is incomplete (ca.pem and ca.key must both exist): restore the missing file", dir)
	case !errors.Is(cerr, os.ErrNotExist):
		return nil, false, cerr
	case !errors.Is(kerr, os.ErrNotExist):
		return nil, false, kerr
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	ca, keyPEM, err := NewCA(name, CALifetime)
	if err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(certFile, ca.CertPEM, 0o644); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// LocalFiles are a certificate issued from a CA directory: the
// certificate, its key and the CA's certificate.
type LocalFiles struct {
	CA   string `json:"ca"`
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// IssueFromDir issues a certificate for leaf from the CA in dir (created
// when missing, like LoadOrCreateCA) with a new key, written beside it
// as <role>-<id>.crt and .key: tests, benchmarks and hosts without a
// director.
func IssueFromDir(dir, caName string, leaf Leaf) (LocalFiles, error) {
	ca, _, err := LoadOrCreateCA(dir, caName)
	if err != nil {
		return LocalFiles{}, err
	}
	base := filepath.Join(dir, leaf.Identity.Role+"-"+leaf.Identity.ID)
	if err := IssueFiles(ca, leaf, base); err != nil {
		return LocalFiles{}, err
	}
	return LocalFiles{Cert: base + ".crt", Key: base + ".key", CA: filepath.Join(dir, "ca.pem")}, nil
}
