package director

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"paddock/engine"
	"paddock/stunnel"
)

// tokenPrefix starts every roles token: pdk1.<secret>.<CA sha256>.
const tokenPrefix = "pdk1"

// DefaultTokenTTL is the lifetime of an ephemeral token.
const DefaultTokenTTL = time.Hour

// TokenRecord is a roles token as stored at /paddock/security/tokens/<hash>
// (the hash of its secret: the secret itself is never stored).
type TokenRecord struct {
	ID         string    `json:"id"`
	Roles      []string  `json:"roles"`
	Persistent bool      `json:"persistent"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	Uses       int       `json:"uses"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	LastHost   string    `json:"last_host,omitempty"`
}

// Expired reports whether an ephemeral token's time is up.
func (t TokenRecord) Expired(now time.Time) bool {
	return !t.Persistent && !t.ExpiresAt.IsZero() && now.After(t.ExpiresAt)
}

// Token is a parsed roles token.
type Token struct {
	Secret string
	// CAFingerprint pins the platform CA (SHA-256 of its DER, hex).
	CAFingerprint string
}

func (t Token) String() string { return tokenPrefix + "." + t.Secret + "." + t.CAFingerprint }

// Hash is the token's id in ZooKeeper.
func (t Token) Hash() string {
	h := sha256.Sum256([]byte(t.Secret))
	return hex.EncodeToString(h[:])
}

// ParseToken reads a token printed by `paddock token create`.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 || parts[0] != tokenPrefix || len(parts[1]) != 64 || len(parts[2]) != 64 {
		return Token{}, errors.New("malformed roles token: copy the whole pdk1.… string printed by `paddock token create`")
	}
	for _, p := range parts[1:] {
		if _, err := hex.DecodeString(p); err != nil {
			return Token{}, errors.New("malformed roles token: not hexadecimal")
		}
	}
	return Token{Secret: parts[1], CAFingerprint: parts[2]}, nil
}

// Enrollable roles: what a token may grant. "api" and "console" are the
// admin role's agents.
var tokenRoles = []string{"allocator", "proxy", "constructor", "director", "admin"}

// NormalizeRoles validates role names (aliases api/console → admin),
// sorted and deduplicated.
func NormalizeRoles(roles []string) ([]string, error) {
	var out []string
	for _, r := range roles {
		for _, f := range strings.Split(r, ",") {
			f = strings.TrimSpace(strings.ToLower(f))
			if f == "" {
				continue
			}
			if f == "api" || f == "console" {
				f = "admin"
			}
			if !slices.Contains(tokenRoles, f) {
				return nil, fmt.Errorf("unknown role %q: use %s", f, strings.Join(tokenRoles, ", "))
			}
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no role given: use --roles with one or more of %s", strings.Join(tokenRoles, ", "))
	}
	sort.Strings(out)
	return out, nil
}

// CreateToken stores a new roles token and returns it. s must be a
// director-role store (only the director may write security/**).
func CreateToken(ctx context.Context, s *engine.Store, roles []string, ttl time.Duration, persistent bool) (Token, TokenRecord, error) {
	roles, err := NormalizeRoles(roles)
	if err != nil {
		return Token{}, TokenRecord{}, err
	}
	ca, err := ReadCA(ctx, s)
	if err != nil {
		return Token{}, TokenRecord{}, err
	}
	tok := Token{Secret: engine.RandomToken(32), CAFingerprint: stunnel.Fingerprint(ca.Cert)}
	now := time.Now().UTC()
	rec := TokenRecord{ID: tok.Hash()[:12], Roles: roles, Persistent: persistent, CreatedAt: now}
	if !persistent {
		if ttl <= 0 {
			ttl = DefaultTokenTTL
		}
		rec.ExpiresAt = now.Add(ttl)
	}
	if err := s.Create(ctx, engine.PathTokens, nil); err != nil && !errors.Is(err, engine.ErrExists) {
		return Token{}, TokenRecord{}, fmt.Errorf("create %s: %w (token commands run with the director's credential)", engine.PathTokens, err)
	}
	if err := s.Create(ctx, engine.TokenPath(tok.Hash()), rec); err != nil {
		if errors.Is(err, engine.ErrNoAuth) {
			return Token{}, TokenRecord{}, fmt.Errorf("store the token: %w (token commands run with the director's credential: on the director host, or with --zk-credential <director.json>)", err)
		}
		return Token{}, TokenRecord{}, fmt.Errorf("store the token: %w", err)
	}
	return tok, rec, nil
}

// ListTokens returns the stored tokens (persistent and unexpired
// ephemeral ones; expired ephemeral tokens are deleted on the way).
func ListTokens(ctx context.Context, s *engine.Store) ([]TokenRecord, error) {
	hashes, err := s.Children(ctx, engine.PathTokens)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var out []TokenRecord
	for _, h := range hashes {
		var rec TokenRecord
		if _, err := s.GetJSON(ctx, engine.TokenPath(h), &rec); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				continue
			}
			return nil, err
		}
		if rec.Expired(now) {
			_ = s.Delete(ctx, engine.TokenPath(h), engine.AnyVersion)
			continue
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// RevokeToken deletes the token whose id (or a unique prefix of it, or
// the whole token string) is given.
func RevokeToken(ctx context.Context, s *engine.Store, idOrToken string) (TokenRecord, error) {
	if t, err := ParseToken(idOrToken); err == nil {
		idOrToken = t.Hash()
	}
	hashes, err := s.Children(ctx, engine.PathTokens)
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return TokenRecord{}, err
	}
	var match []string
	for _, h := range hashes {
		if strings.HasPrefix(h, idOrToken) {
			match = append(match, h)
		}
	}
	switch len(match) {
	case 0:
		return TokenRecord{}, fmt.Errorf("no token %q: see `paddock token list`", idOrToken)
	case 1:
	default:
		return TokenRecord{}, fmt.Errorf("token id %q is ambiguous (%d tokens): give more characters", idOrToken, len(match))
	}
	var rec TokenRecord
	if _, err := s.GetJSON(ctx, engine.TokenPath(match[0]), &rec); err != nil {
		return rec, err
	}
	return rec, s.Delete(ctx, engine.TokenPath(match[0]), engine.AnyVersion)
}

// MissingRolesError refuses a host asking for roles its token lacks.
type MissingRolesError struct {
	Missing, Granted []string
}

func (e *MissingRolesError) Error() string {
	return fmt.Sprintf("roles token does not grant role(s) %s (it grants %s): create a token with `paddock token create --roles %s` and join again",
		strings.Join(e.Missing, ", "), strings.Join(e.Granted, ", "), strings.Join(append(slices.Clone(e.Granted), e.Missing...), ","))
}

// ErrTokenInvalid is an unknown, revoked or expired token.
var ErrTokenInvalid = errors.New("roles token unknown, revoked or expired: ask an operator for a new one (`paddock token create`)")

// redeemToken checks a token for roles and records its use (CAS).
func redeemToken(ctx context.Context, s *engine.Store, tok Token, roles []string, host string) (TokenRecord, error) {
	var rec TokenRecord
	p := engine.TokenPath(tok.Hash())
	_, err := s.Update(ctx, p, &rec, func() error {
		if rec.Expired(time.Now()) {
			return ErrTokenInvalid
		}
		var missing []string
		for _, r := range roles {
			if !slices.Contains(rec.Roles, r) {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			return &MissingRolesError{Missing: missing, Granted: rec.Roles}
		}
		rec.Uses++
		rec.LastUsedAt = time.Now().UTC()
		rec.LastHost = host
		return nil
	})
	if errors.Is(err, engine.ErrNotFound) {
		return rec, ErrTokenInvalid
	}
	if err == nil && rec.Expired(time.Now()) {
		return rec, ErrTokenInvalid
	}
	return rec, err
}

// WriteTokens writes the table of `paddock token list`.
func WriteTokens(w io.Writer, toks []TokenRecord) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLES\tKIND\tEXPIRES\tUSES\tLAST HOST")
	for _, t := range toks {
		kind, exp, host := "ephemeral", t.ExpiresAt.Format(time.RFC3339), t.LastHost
		if t.Persistent {
			kind, exp = "persistent", "-"
		}
		if host == "" {
			host = "-"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%d\t%s\n", t.ID, t.Roles, kind, exp, t.Uses, host)
	}
	return tw.Flush()
}

// Describe says what the token grants and until when, and how a host
// joins with it (what `paddock token create` prints beside the token).
func (rec TokenRecord) Describe() string {
	when := "persistent (revoke with `paddock token revoke " + rec.ID + "`)"
	if !rec.Persistent {
		when = "expires " + rec.ExpiresAt.Format(time.RFC3339)
	}
	return fmt.Sprintf("token %s for roles %v, %s\njoin a host with: paddock <role> --join DIRECTOR --token <token>", rec.ID, rec.Roles, when)
}
