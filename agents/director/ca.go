package director

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// CADir is where the director keeps its CA under a state dir.
func CADir(stateDir string) string { return filepath.Join(stateDir, "director") }

// LoadOrCreateCA reads the CA of the state dir, creating it (key mode
// 0600) on first start (stunnel.LoadOrCreateCA: an incomplete CA is
// refused, never re-created).
func LoadOrCreateCA(stateDir string) (*stunnel.CA, bool, error) {
	return stunnel.LoadOrCreateCA(CADir(stateDir), "paddock root CA")
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
