package director

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// Znodes of issued and revoked certificates, under the director-only
// /paddock/security (its ACL row: security/** director rw).
var (
	pathIssued  = engine.PathSecurity + "/issued"
	pathRevoked = engine.PathSecurity + "/revoked"
)

// CertRecord is an issued or revoked certificate.
type CertRecord struct {
	Serial    string    `json:"serial"`
	Identity  string    `json:"identity"`
	NotAfter  time.Time `json:"not_after"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// crlRefresh is how often the director re-reads the revocations.
const crlRefresh = 5 * time.Second

func (d *Director) recordIssued(ctx context.Context, certPEM []byte) {
	certs, err := stunnel.ParseCerts(certPEM)
	if err != nil {
		return
	}
	id, _ := stunnel.IdentityOf(certs[0])
	rec := CertRecord{Serial: certs[0].SerialNumber.String(), Identity: id.String(), NotAfter: certs[0].NotAfter}
	if err := d.store.Create(ctx, pathIssued+"/"+rec.Serial, rec); err != nil {
		d.log.Warn("could not record an issued certificate (it cannot be revoked by id)", "serial", rec.Serial, "err", err)
	}
}

// ensureCertPaths creates the issued/revoked parents.
func ensureCertPaths(ctx context.Context, s *engine.Store) error {
	for _, p := range []string{pathIssued, pathRevoked} {
		if err := s.Create(ctx, p, nil); err != nil && !errors.Is(err, engine.ErrExists) {
			return fmt.Errorf("create %s: %w", p, err)
		}
	}
	return nil
}

// RevokeCertificates revokes the certificates of an identity
// ("role/id"), of a host id (every role), or one serial. s must be a
// director store. It returns the revoked records.
func RevokeCertificates(ctx context.Context, s *engine.Store, what string) ([]CertRecord, error) {
	if err := ensureCertPaths(ctx, s); err != nil {
		return nil, err
	}
	serials, err := s.Children(ctx, pathIssued)
	if err != nil {
		return nil, err
	}
	var out []CertRecord
	for _, sn := range serials {
		var rec CertRecord
		if _, err := s.GetJSON(ctx, pathIssued+"/"+sn, &rec); err != nil {
			continue
		}
		_, host, _ := strings.Cut(rec.Identity, "/")
		if rec.Serial != what && rec.Identity != what && host != what {
			continue
		}
		rec.RevokedAt = time.Now().UTC()
		if err := s.Create(ctx, pathRevoked+"/"+sn, rec); err != nil && !errors.Is(err, engine.ErrExists) {
			return out, err
		}
		out = append(out, rec)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no issued certificate matches %q: give a serial, a role/id or a host id (see the director's log)", what)
	}
	return out, nil
}

// revokedSerials reads the revocations, dropping those past their
// certificate's expiry (an expired certificate is refused anyway).
func (d *Director) revokedSerials(ctx context.Context) ([]*big.Int, error) {
	kids, err := d.store.Children(ctx, pathRevoked)
	if err != nil {
		return nil, err
	}
	var out []*big.Int
	now := time.Now()
	for _, k := range kids {
		var rec CertRecord
		if _, err := d.store.GetJSON(ctx, pathRevoked+"/"+k, &rec); err != nil {
			continue
		}
		if now.After(rec.NotAfter.Add(time.Hour)) {
			_ = d.store.Delete(ctx, pathRevoked+"/"+k, engine.AnyVersion)
			_ = d.store.Delete(ctx, pathIssued+"/"+k, engine.AnyVersion)
			continue
		}
		if n, ok := new(big.Int).SetString(k, 10); ok {
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cmp(out[j]) < 0 })
	return out, nil
}

// refreshCRL re-signs the CRL when the revocations changed and applies
// it to the director's own tunnel.
func (d *Director) refreshCRL(ctx context.Context) error {
	serials, err := d.revokedSerials(ctx)
	if err != nil {
		return err
	}
	key := fmt.Sprint(serials)
	d.mu.Lock()
	same := key == d.crlKey && d.crl != nil && time.Until(d.crlNext) > time.Hour
	d.mu.Unlock()
	if same {
		return nil
	}
	d.mu.Lock()
	d.crlNum++
	num := d.crlNum
	d.mu.Unlock()
	crl, err := d.ca.CRL(time.Now().UnixNano()+num, serials, 24*time.Hour)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.own.SetPEM(d.ownCert, d.ownKey, d.ca.CertPEM, crl); err != nil {
		return err
	}
	d.crl, d.crlKey, d.crlNext = crl, key, time.Now().Add(24*time.Hour)
	if len(serials) > 0 {
		d.log.Info("revocation list updated", "revoked", len(serials))
	}
	return nil
}

func (d *Director) crlLoop(ctx context.Context) {
	t := time.NewTicker(crlRefresh)
	defer t.Stop()
	for {
		if err := d.refreshCRL(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("refreshing the revocation list failed; keeping the previous one", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Director) serveCRL(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	crl := d.crl
	d.mu.Unlock()
	if crl == nil {
		http.Error(w, "revocation list not ready", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(crl)
}

// isRevoked reports whether serial is revoked (director's view).
func (d *Director) isRevoked(serial *big.Int) bool {
	m := d.own.Current()
	return m != nil && m.Revoked[serial.String()]
}
