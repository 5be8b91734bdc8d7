package service

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"paddock/engine"
)

// API roles (Elastic's platform roles).
const (
	RolePlatformAdmin     = "platform-admin"
	RolePlatformViewer    = "platform-viewer"
	RoleDeploymentManager = "deployment-manager"
)

// APIRoles lists the roles.
var APIRoles = []string{RolePlatformAdmin, RolePlatformViewer, RoleDeploymentManager}

// Credential kinds stored under /paddock/apikeys.
const (
	CredKey  = "key"
	CredUser = "user"
)

// userPrefix names built-in users' records (/paddock/apikeys/user-<name>);
// API key ids are hex and never collide with it.
const userPrefix = "user-"

// pbkdf2Iterations hashes user passwords (low entropy); API key secrets
// are random 192-bit values and a single SHA-256 suffices.
const pbkdf2Iterations = 100_000

// APIKeyRecord is /paddock/apikeys/<id> (admin role only). The secret is
// never stored, only its hash.
type APIKeyRecord struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	Name       string    `json:"name"`
	Role       string    `json:"role"`
	Hash       string    `json:"hash"`
	Salt       string    `json:"salt,omitempty"`
	Iterations int       `json:"iterations,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by,omitempty"`
}

// APIKeyInfo is what listing shows (no hash).
type APIKeyInfo struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

// Principal is an authenticated caller.
type Principal struct {
	Name string `json:"name"`
	Role string `json:"role"`
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Actor names the principal in plans and logs.
func (p Principal) Actor() Actor { return Actor(p.Kind + ":" + p.Name) }

var (
	keyNameRe  = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)
	keyIDRe    = regexp.MustCompile(`^[0-9a-f]{16}$`)
	keySecRe   = regexp.MustCompile(`^[0-9a-f]{48}$`)
	errBadAuth = &Error{Kind: KindUnauthorized, Code: "auth.invalid",
		Message: "invalid credentials: pass a valid API key (Authorization: ApiKey <key>) or user and password (basic auth)"}
)

func validRole(r string) bool { return contains(APIRoles, r) }

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// CreateAPIKey creates an API key with a role and returns its id and the
// key to present (Authorization: ApiKey <key>; `api-key` in the CLI
// config). The key is shown only here; only its hash is stored.
func (s *Service) CreateAPIKey(ctx context.Context, name, role string) (id, key string, err error) {
	return s.CreateAPIKeyBy(ctx, name, role, "")
}

// CreateAPIKeyBy is CreateAPIKey recording who created it.
func (s *Service) CreateAPIKeyBy(ctx context.Context, name, role string, actor Actor) (id, key string, err error) {
	var fe []FieldError
	if !keyNameRe.MatchString(name) {
		fe = append(fe, field("name", "1..64 characters among letters, digits and . _ @ -"))
	}
	if !validRole(role) {
		fe = append(fe, field("role", "unknown role %q: use one of %s", role, strings.Join(APIRoles, ", ")))
	}
	if len(fe) > 0 {
		return "", "", invalid(fe...)
	}
	id = engine.RandomToken(8)
	secret := engine.RandomToken(24)
	rec := APIKeyRecord{ID: id, Kind: CredKey, Name: name, Role: role, Hash: hashSecret(secret), CreatedAt: s.now(), CreatedBy: string(actor)}
	if err := s.store.Create(ctx, engine.APIKeyPath(id), rec); err != nil {
		return "", "", storeErr(err, "apikey", id)
	}
	s.log.Info("api key created", "id", id, "name", name, "role", role, "by", string(actor))
	return id, id + "." + secret, nil
}

// ListAPIKeys lists keys and users (never their hashes).
func (s *Service) ListAPIKeys(ctx context.Context) ([]APIKeyInfo, error) {
	ids, err := s.store.Children(ctx, engine.PathAPIKeys)
	if err != nil {
		return nil, storeErr(err, "apikey", "list")
	}
	out := []APIKeyInfo{}
	for _, id := range ids {
		var r APIKeyRecord
		if _, err := s.store.GetJSON(ctx, engine.APIKeyPath(id), &r); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				continue
			}
			return nil, storeErr(err, "apikey", id)
		}
		out = append(out, APIKeyInfo{ID: id, Kind: r.Kind, Name: r.Name, Role: r.Role, CreatedAt: r.CreatedAt, CreatedBy: r.CreatedBy})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// RevokeAPIKey deletes a key (or a user, by its id user-<name>); it stops
// working at once.
func (s *Service) RevokeAPIKey(ctx context.Context, id string, actor Actor) error {
	if !keyIDRe.MatchString(id) && !strings.HasPrefix(id, userPrefix) {
		return notFound("apikey", id)
	}
	if err := s.store.Delete(ctx, engine.APIKeyPath(id), engine.AnyVersion); err != nil {
		return storeErr(err, "apikey", id)
	}
	s.users.forget(id)
	s.log.Info("api key revoked", "id", id, "by", string(actor))
	return nil
}

// SetUser creates or replaces a built-in user for basic auth.
func (s *Service) SetUser(ctx context.Context, name, role, password string, actor Actor) error {
	var fe []FieldError
	if !keyNameRe.MatchString(name) {
		fe = append(fe, field("name", "1..64 characters among letters, digits and . _ @ -"))
	}
	if !validRole(role) {
		fe = append(fe, field("role", "unknown role %q: use one of %s", role, strings.Join(APIRoles, ", ")))
	}
	if len(password) < 8 || len(password) > 256 {
		fe = append(fe, field("password", "8..256 characters"))
	}
	if len(fe) > 0 {
		return invalid(fe...)
	}
	salt := engine.RandomToken(16)
	dk, err := pbkdf2.Key(sha256.New, password, []byte(salt), pbkdf2Iterations, 32)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	id := userPrefix + name
	rec := APIKeyRecord{ID: id, Kind: CredUser, Name: name, Role: role, Hash: hex.EncodeToString(dk), Salt: salt,
		Iterations: pbkdf2Iterations, CreatedAt: s.now(), CreatedBy: string(actor)}
	if err := s.store.Put(ctx, engine.APIKeyPath(id), rec); err != nil {
		return storeErr(err, "user", name)
	}
	s.users.forget(id)
	s.log.Info("user set", "user", name, "role", role, "by", string(actor))
	return nil
}

// AuthenticateKey checks an API key ("<id>.<secret>").
func (s *Service) AuthenticateKey(ctx context.Context, key string) (Principal, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(key), ".")
	if !ok || !keyIDRe.MatchString(id) || !keySecRe.MatchString(secret) {
		return Principal{}, errBadAuth
	}
	// From the watch cache: every API request authenticates, and a read
	// on the service's session waits behind its writes.
	var r APIKeyRecord
	if !s.cache.apiKey(ctx, id, &r) {
		r = APIKeyRecord{}
		if _, err := s.store.GetJSON(ctx, engine.APIKeyPath(id), &r); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return Principal{}, errBadAuth
			}
			return Principal{}, storeErr(err, "apikey", id)
		}
	}
	if r.Kind != CredKey || subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(r.Hash)) != 1 {
		return Principal{}, errBadAuth
	}
	return Principal{Name: r.Name, Role: r.Role, Kind: CredKey, ID: id}, nil
}

// AuthenticateUser checks a built-in user's password. Successful checks
// are remembered for a minute (PBKDF2 is deliberately slow); SetUser and
// RevokeAPIKey in this process forget them at once.
func (s *Service) AuthenticateUser(ctx context.Context, name, password string) (Principal, error) {
	if !keyNameRe.MatchString(name) || len(password) > 256 {
		return Principal{}, errBadAuth
	}
	id := userPrefix + name
	fp := hashSecret(name + "\x00" + password)
	if p, ok := s.users.get(id, fp, s.now()); ok {
		return p, nil
	}
	var r APIKeyRecord
	if _, err := s.store.GetJSON(ctx, engine.APIKeyPath(id), &r); err != nil {
		if errors.Is(err, engine.ErrNotFound) {
			// Spend the same work as for a real user: the answer's time
			// must not tell which user names exist.
			_, _ = pbkdf2.Key(sha256.New, password, []byte("paddock-no-such-user"), pbkdf2Iterations, 32)
			return Principal{}, errBadAuth
		}
		return Principal{}, storeErr(err, "user", name)
	}
	if r.Kind != CredUser || r.Iterations <= 0 {
		return Principal{}, errBadAuth
	}
	dk, err := pbkdf2.Key(sha256.New, password, []byte(r.Salt), r.Iterations, 32)
	if err != nil || subtle.ConstantTimeCompare([]byte(hex.EncodeToString(dk)), []byte(r.Hash)) != 1 {
		return Principal{}, errBadAuth
	}
	p := Principal{Name: r.Name, Role: r.Role, Kind: CredUser, ID: id}
	s.users.put(id, fp, p, s.now().Add(time.Minute))
	return p, nil
}

// userCache remembers successful basic-auth checks briefly.
type userCache struct {
	mu sync.Mutex
	m  map[string]userEntry
}

type userEntry struct {
	fp      string
	p       Principal
	expires time.Time
}

func (c *userCache) get(id, fp string, now time.Time) (Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || e.fp != fp || now.After(e.expires) {
		return Principal{}, false
	}
	return e.p, true
}

func (c *userCache) put(id, fp string, p Principal, exp time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]userEntry{}
	}
	c.m[id] = userEntry{fp: fp, p: p, expires: exp}
}

func (c *userCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
