package director

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// CADir is where the director keeps its CA under a state dir.
func CADir(stateDir string) string { return filepath.Join(stateDir, "director") }

// caLifetime is the root's validity; leaf certificates are short-lived.
const caLifetime = 10 * 365 * 24 * time.Hour

// LoadOrCreateCA reads the CA of the state dir, creating it (key mode
// 0600) on first start.
func LoadOrCreateCA(stateDir string) (*stunnel.CA, bool, error) {
	dir := CADir(stateDir)
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	cb, cerr := os.ReadFile(certFile)
	kb, kerr := os.ReadFile(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		if st, err := os.Stat(keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("CA key %s is readable by others (mode %s): chmod 600 it", keyFile, st.Mode().Perm())
		}
		ca, err := stunnel.LoadCA(cb, kb)
		if err != nil {
			return nil, false, fmt.Errorf("CA in %s: %w (restore it from backup; a new CA would invalidate every certificate)", dir, err)
		}
		return ca, false, nil
	case cerr == nil || kerr == nil:
		return nil, false, fmt.Errorf("CA in %s is incomplete (ca.pem and ca.key must both exist): restore the missing file", dir)
	case !errors.Is(cerr, os.ErrNotExist):
		return nil, false, cerr
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	ca, keyPEM, err := stunnel.NewCA("paddock root CA", caLifetime)
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

// PublishCA writes the CA certificate at /paddock/security/ca (public,
// world-readable). A different CA already published is an error: two
// directors must share one CA.
func PublishCA(ctx context.Context, s *engine.Store, ca *stunnel.CA) error {
	if err := s.Create(ctx, engine.PathCA, ca.CertPEM); err == nil {
		return nil
	} else if !errors.Is(err, engine.ErrExists) {
		return fmt.Errorf("publish the CA certificate: %w", err)
	}
	b, _, err := s.Get(ctx, engine.PathCA)
	if err != nil {
		return err
	}
	if bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(ca.CertPEM)) {
		return nil
	}
	if cur, err := stunnel.ParseCerts(b); err == nil && time.Now().After(cur[0].NotAfter) {
		_, err := s.Set(ctx, engine.PathCA, ca.CertPEM, engine.AnyVersion)
		return err
	}
	return fmt.Errorf("ZooKeeper already publishes another CA at %s: run every director with the same CA (copy %s from the first director host)",
		engine.PathCA, CADir("<state-dir>"))
}

// ReadCA reads the published CA certificate (no credential needed).
func ReadCA(ctx context.Context, s *engine.Store) (*stunnel.CA, error) {
	b, _, err := s.Get(ctx, engine.PathCA)
	if err != nil {
		return nil, fmt.Errorf("read the CA at %s: %w (is the director running? it publishes the CA on start)", engine.PathCA, err)
	}
	certs, err := stunnel.ParseCerts(b)
	if err != nil {
		return nil, fmt.Errorf("CA at %s: %w", engine.PathCA, err)
	}
	return &stunnel.CA{Cert: certs[0], CertPEM: b}, nil
}
