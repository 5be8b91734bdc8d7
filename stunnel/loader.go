package stunnel

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"context"
)

// Material is one generation of TLS material: this end's certificate,
// the CA pool peers are verified against, and the revoked serials.
type Material struct {
	Cert     tls.Certificate
	Leaf     *x509.Certificate
	Identity Identity
	Roots    *x509.CertPool
	// Revoked holds revoked serial numbers (decimal strings) from the CRL.
	Revoked map[string]bool
	// Generation counts successful loads (1 for the first).
	Generation int64
	LoadedAt   time.Time
}

// Loader holds the current TLS material and reloads it from files,
// keeping the previous material when a reload fails.
type Loader struct {
	// CertFile, KeyFile, CAFile are PEM files; CRLFile (optional) is a
	// PEM X.509 CRL signed by the CA.
	CertFile, KeyFile, CAFile, CRLFile string

	cur     atomic.Pointer[Material]
	mu      sync.Mutex
	lastErr error
	lastTry time.Time
	gen     int64
	onLoad  []func(*Material, error)
}

// NewFileLoader loads material from files once; it fails when the first
// load fails (nothing to keep).
func NewFileLoader(certFile, keyFile, caFile, crlFile string) (*Loader, error) {
	l := &Loader{CertFile: certFile, KeyFile: keyFile, CAFile: caFile, CRLFile: crlFile}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// NewPEMLoader makes a loader from in-memory PEM (the director signs its
// own certificate); update it with SetPEM.
func NewPEMLoader(certPEM, keyPEM, caPEM, crlPEM []byte) (*Loader, error) {
	l := &Loader{}
	if err := l.SetPEM(certPEM, keyPEM, caPEM, crlPEM); err != nil {
		return nil, err
	}
	return l, nil
}

// OnLoad registers a callback run after every load attempt (material is
// nil on failure). Metrics and logs hook here.
func (l *Loader) OnLoad(fn func(*Material, error)) {
	l.mu.Lock()
	l.onLoad = append(l.onLoad, fn)
	l.mu.Unlock()
}

// Current is the material in use.
func (l *Loader) Current() *Material { return l.cur.Load() }

// LastError is the error of the last reload (nil when it succeeded) and
// when it was tried.
func (l *Loader) LastError() (error, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr, l.lastTry
}

// Reload reads the files again. On failure the current material stays
// in use and the error is returned (and kept for the status endpoint).
func (l *Loader) Reload() error {
	if l.CertFile == "" {
		return errors.New("this loader has no files to reload from")
	}
	read := func(f string) ([]byte, error) {
		if f == "" {
			return nil, nil
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		return b, nil
	}
	var bs [4][]byte
	for i, f := range []string{l.CertFile, l.KeyFile, l.CAFile, l.CRLFile} {
		b, err := read(f)
		if err != nil {
			return l.fail(err)
		}
		bs[i] = b
	}
	return l.SetPEM(bs[0], bs[1], bs[2], bs[3])
}

func (l *Loader) fail(err error) error {
	l.mu.Lock()
	l.lastErr, l.lastTry = err, time.Now()
	cbs := slices.Clone(l.onLoad)
	l.mu.Unlock()
	for _, fn := range cbs {
		fn(nil, err)
	}
	return err
}

// SetPEM validates new material and swaps it in; on error the current
// material stays.
func (l *Loader) SetPEM(certPEM, keyPEM, caPEM, crlPEM []byte) error {
	m, err := parseMaterial(certPEM, keyPEM, caPEM, crlPEM)
	if err != nil {
		return l.fail(fmt.Errorf("TLS material rejected, keeping the previous one: %w", err))
	}
	l.mu.Lock()
	l.gen++
	m.Generation = l.gen
	l.cur.Store(m)
	l.lastErr, l.lastTry = nil, m.LoadedAt
	cbs := slices.Clone(l.onLoad)
	l.mu.Unlock()
	for _, fn := range cbs {
		fn(m, nil)
	}
	return nil
}

func parseMaterial(certPEM, keyPEM, caPEM, crlPEM []byte) (*Material, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate/key pair: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
		cert.Leaf = leaf
	}
	now := time.Now()
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("certificate expired at %s: renew it (paddock director renews automatically; or re-join with a roles token)", leaf.NotAfter.Format(time.RFC3339))
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, err
	}
	cas, err := ParseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("own certificate does not verify against the CA bundle: %w", err)
	}
	m := &Material{Cert: cert, Leaf: leaf, Identity: id, Roots: pool, Revoked: map[string]bool{}, LoadedAt: now}
	if len(crlPEM) > 0 {
		blk, _ := pem.Decode(crlPEM)
		if blk == nil {
			return nil, errors.New("CRL file holds no PEM block")
		}
		crl, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL: %w", err)
		}
		signed := false
		for _, c := range cas {
			if crl.CheckSignatureFrom(c) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, errors.New("CRL is not signed by the CA")
		}
		for _, e := range crl.RevokedCertificateEntries {
			m.Revoked[e.SerialNumber.String()] = true
		}
	}
	return m, nil
}

// WatchReload reloads the files on SIGHUP and every interval (0: signal
// only) until ctx ends. Failures are logged and kept for the status
// endpoint; the previous material stays in use. The SIGHUP handler is
// installed before WatchReload blocks; callers that signal right after
// starting it should install their own handler first.
func (l *Loader) WatchReload(ctx context.Context, interval time.Duration, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	l.watch(ctx, interval, hup, log)
}

func (l *Loader) watch(ctx context.Context, interval time.Duration, hup <-chan os.Signal, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		why := ""
		select {
		case <-ctx.Done():
			return
		case <-hup:
			why = "SIGHUP"
		case <-tick:
			why = "timer"
		}
		before := l.Current()
		if err := l.Reload(); err != nil {
			log.Warn("certificate reload failed; keeping the previous certificate", "trigger", why, "err", err)
			continue
		}
		if m := l.Current(); before == nil || !m.Leaf.Equal(before.Leaf) {
			log.Info("certificate reloaded", "trigger", why, "identity", m.Identity.String(), "not_after", m.Leaf.NotAfter)
		}
	}
}
