package node

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"paddock/agents/node/eserr"
)

// Deployment security as Elasticsearch has it: every request carries
// Basic credentials of a user of the credentials file, or an API key
// (Authorization: ApiKey base64(id:key)) created on the node. The
// platform's own calls (health probes, the constructor's snapshots and
// peers, replication between peers) carry the platform identity of the
// same file, never a customer's password.

// SecurityFileName is the credentials file, relative to the data
// directory. The allocator writes it (0600) before the node starts and
// whenever the deployment's credentials change; the node reads it again
// within a second of a change.
const SecurityFileName = "security/credentials.json"

// PlatformUser is the user name of the platform identity. Names starting
// with "_" are reserved: no customer user can be called so.
const PlatformUser = "_paddock"

// SecurityFile is the content of the credentials file.
type SecurityFile struct {
	// Users are the deployment's users with their bcrypt password hashes
	// (the elastic superuser).
	Users []UserHash `json:"users"`
	// Platform is the platform identity: the platform presents it to the
	// node and the node to its peers. A random secret per deployment,
	// unrelated to any customer password.
	Platform PlatformCredential `json:"platform"`
}

// UserHash is a user and the slow hash of its password.
type UserHash struct {
	Username     string   `json:"username"`
	PasswordHash string   `json:"password_hash"`
	Roles        []string `json:"roles,omitempty"`
}

// PlatformCredential is the platform identity's secret.
type PlatformCredential struct {
	Password string `json:"password"`
}

// SetAuth sets the platform identity on a request to a node.
func (p PlatformCredential) SetAuth(r *http.Request) {
	if p.Password != "" {
		r.SetBasicAuth(PlatformUser, p.Password)
	}
}

// WriteSecurityFile writes f as dataDir's credentials file (0600, via a
// temporary file and a rename).
func WriteSecurityFile(dataDir string, f SecurityFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	file := filepath.Join(dataDir, SecurityFileName)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(file), err)
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	return os.Rename(tmp, file)
}

// ReadSecurityFile reads a credentials file.
func ReadSecurityFile(file string) (SecurityFile, error) {
	var f SecurityFile
	b, err := os.ReadFile(file)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("credentials file %s is malformed: %w (the allocator rewrites it; remove it to get a fresh one)", file, err)
	}
	for _, u := range f.Users {
		if u.Username == "" || strings.HasPrefix(u.Username, "_") {
			return f, fmt.Errorf("credentials file %s: user name %q is empty or reserved", file, u.Username)
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			return f, fmt.Errorf("credentials file %s: user %s has no bcrypt hash: %w", file, u.Username, err)
		}
	}
	return f, nil
}

// Principal is who a request authenticated as.
type Principal struct {
	Username string
	Roles    []string
	// Realm is "reserved" (file users), "_es_api_key" or "_paddock".
	Realm string
	// APIKeyID and APIKeyName are set for API key authentication.
	APIKeyID, APIKeyName string
	// expires is the API key's expiry (zero: never).
	expires time.Time
}

// Platform tells whether p is the platform identity.
func (p *Principal) Platform() bool { return p != nil && p.Realm == realmPlatform }

const (
	realmReserved = "reserved"
	realmAPIKey   = "_es_api_key"
	realmPlatform = "_paddock"
	// reloadEvery bounds how stale the credentials file may be.
	reloadEvery = time.Second
	// maxCached bounds the verified-credentials cache.
	maxCached = 4096
)

type principalKey struct{}

// PrincipalOf returns the principal of an authenticated request (nil
// when security is off).
func PrincipalOf(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// security is the node's authentication state.
type security struct {
	file    string
	require bool
	keys    *apiKeyStore

	lastCheck atomic.Int64 // unix nanos of the last look at the file

	mu      sync.RWMutex
	loaded  bool
	modTime time.Time
	size    int64
	creds   SecurityFile
	// cache maps sha256(Authorization value) to its verified principal:
	// the slow hash runs once per credential, not per request. Emptied
	// when the file changes or a key is invalidated.
	cache map[[32]byte]*Principal
}

func newSecurity(file string, require bool, keys *apiKeyStore) *security {
	return &security{file: file, require: require, keys: keys, cache: map[[32]byte]*Principal{}}
}

// enabled tells whether requests must authenticate.
func (sec *security) enabled() bool {
	sec.mu.RLock()
	defer sec.mu.RUnlock()
	return sec.loaded || sec.require
}

// platform returns the platform credential ("" password when none).
func (sec *security) platform() PlatformCredential {
	sec.refresh(false)
	sec.mu.RLock()
	defer sec.mu.RUnlock()
	return sec.creds.Platform
}

// refresh reads the credentials file again when it changed, at most once
// per reloadEvery unless forced.
func (sec *security) refresh(force bool) error {
	now := time.Now().UnixNano()
	last := sec.lastCheck.Load()
	if !force && now-last < int64(reloadEvery) {
		return nil
	}
	if !sec.lastCheck.CompareAndSwap(last, now) && !force {
		return nil
	}
	st, err := os.Stat(sec.file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// A node that had credentials keeps them: a vanished file
			// never turns security off.
			return nil
		}
		return err
	}
	sec.mu.RLock()
	same := sec.loaded && st.ModTime().Equal(sec.modTime) && st.Size() == sec.size
	sec.mu.RUnlock()
	if same {
		return nil
	}
	f, err := ReadSecurityFile(sec.file)
	if err != nil {
		if sec.enabledLoaded() {
			// Half written (the allocator's copy is not atomic) or
			// damaged: keep the credentials in force and look again
			// at the next check.
			return nil
		}
		return err
	}
	sec.mu.Lock()
	sec.creds, sec.loaded, sec.modTime, sec.size = f, true, st.ModTime(), st.Size()
	clear(sec.cache)
	sec.mu.Unlock()
	return nil
}

func (sec *security) enabledLoaded() bool {
	sec.mu.RLock()
	defer sec.mu.RUnlock()
	return sec.loaded
}

// forget empties the cache (an API key was invalidated).
func (sec *security) forget() {
	sec.mu.Lock()
	clear(sec.cache)
	sec.mu.Unlock()
}

// wwwAuthenticate is what Elasticsearch offers on a 401.
var wwwAuthenticate = []string{`Basic realm="security" charset="UTF-8"`, `ApiKey`}

func unauthenticated(format string, args ...any) *eserr.Error {
	return eserr.New(http.StatusUnauthorized, "security_exception", format, args...).
		With("header", map[string]any{"WWW-Authenticate": wwwAuthenticate})
}

func forbidden(format string, args ...any) *eserr.Error {
	return eserr.New(http.StatusForbidden, "security_exception", format, args...)
}

// authenticate checks r's credentials. It returns nil, nil when security
// is off.
func (sec *security) authenticate(r *http.Request) (*Principal, error) {
	if err := sec.refresh(false); err != nil {
		return nil, eserr.New(http.StatusServiceUnavailable, "security_exception", "the node cannot read its credentials: %v", err)
	}
	if !sec.enabled() {
		return nil, nil
	}
	h := r.Header.Get("Authorization")
	uri := r.URL.Path
	if h == "" {
		return nil, unauthenticated("missing authentication credentials for REST request [%s]", uri)
	}
	sum := sha256.Sum256([]byte(h))
	sec.mu.RLock()
	p, ok := sec.cache[sum]
	loaded := sec.loaded
	sec.mu.RUnlock()
	if ok {
		if p.expires.IsZero() || time.Now().Before(p.expires) {
			return p, nil
		}
		return nil, unauthenticated("unable to authenticate with provided credentials and anonymous access is not allowed for this request: api key [%s] is expired", p.APIKeyID)
	}
	if !loaded {
		return nil, unauthenticated("the node has not received its deployment's credentials yet: retry shortly")
	}
	scheme, cred, _ := strings.Cut(h, " ")
	var err error
	switch strings.ToLower(scheme) {
	case "basic":
		p, err = sec.basic(cred, uri)
	case "apikey":
		p, err = sec.apiKey(cred)
	default:
		return nil, unauthenticated("unable to authenticate with provided credentials and anonymous access is not allowed for this request: use Basic or ApiKey authorization")
	}
	if err != nil {
		return nil, err
	}
	sec.mu.Lock()
	if len(sec.cache) >= maxCached {
		clear(sec.cache)
	}
	sec.cache[sum] = p
	sec.mu.Unlock()
	return p, nil
}

func (sec *security) basic(cred, uri string) (*Principal, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return nil, unauthenticated("invalid basic authentication header encoding")
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, unauthenticated("invalid basic authentication header value")
	}
	fail := unauthenticated("unable to authenticate user [%s] for REST request [%s]", user, uri)
	sec.mu.RLock()
	creds := sec.creds
	sec.mu.RUnlock()
	if user == PlatformUser {
		want := creds.Platform.Password
		if want == "" || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
			return nil, fail
		}
		return &Principal{Username: PlatformUser, Roles: []string{"superuser"}, Realm: realmPlatform}, nil
	}
	for _, u := range creds.Users {
		if u.Username != user {
			continue
		}
		if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(pass)) != nil {
			return nil, fail
		}
		roles := u.Roles
		if len(roles) == 0 {
			roles = []string{"superuser"}
		}
		return &Principal{Username: user, Roles: roles, Realm: realmReserved}, nil
	}
	return nil, fail
}

func (sec *security) apiKey(cred string) (*Principal, error) {
	fail := unauthenticated("unable to authenticate with provided credentials and anonymous access is not allowed for this request")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return nil, fail
	}
	id, key, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, fail
	}
	k, found, err := sec.keys.get(id)
	if err != nil {
		return nil, err
	}
	if !found || bcrypt.CompareHashAndPassword([]byte(k.Hash), []byte(key)) != nil {
		return nil, fail
	}
	if k.Invalidated {
		return nil, unauthenticated("unable to authenticate with provided credentials and anonymous access is not allowed for this request: api key [%s] has been invalidated", id)
	}
	p := &Principal{Username: k.Username, Roles: []string{"superuser"}, Realm: realmAPIKey, APIKeyID: k.ID, APIKeyName: k.Name}
	if k.Expiration > 0 {
		p.expires = time.UnixMilli(k.Expiration)
		if !time.Now().Before(p.expires) {
			return nil, unauthenticated("unable to authenticate with provided credentials and anonymous access is not allowed for this request: api key [%s] is expired", id)
		}
	}
	return p, nil
}

// guard authenticates a request and authorises /_paddock paths (the
// platform's) for the platform identity only. It returns the request
// to serve, carrying its principal.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) (*http.Request, error) {
	p, err := s.sec.authenticate(r)
	if err != nil {
		if eserr.From(err).Status == http.StatusUnauthorized {
			for _, v := range wwwAuthenticate {
				w.Header().Add("WWW-Authenticate", v)
			}
		}
		return r, err
	}
	if p == nil {
		return r, nil
	}
	if !p.Platform() {
		if strings.HasPrefix(r.URL.Path, "/_paddock/") && r.URL.Path != HealthPath {
			return r, forbidden("action [%s %s] is unauthorized for user [%s]: it is reserved to the platform", r.Method, r.URL.Path, p.Username)
		}
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), nil
}

// authenticateResponse answers GET /_security/_authenticate.
func (s *Server) authenticateResponse(w http.ResponseWriter, r *http.Request, _ params) error {
	p := PrincipalOf(r.Context())
	if p == nil {
		// Security off: Elasticsearch answers as the anonymous user.
		p = &Principal{Username: "_anonymous", Roles: []string{}, Realm: "__anonymous"}
	}
	realm := map[string]any{"name": p.Realm, "type": p.Realm}
	out := map[string]any{
		"username": p.Username, "roles": p.Roles, "full_name": nil, "email": nil,
		"metadata": map[string]any{"_reserved": p.Realm == realmReserved}, "enabled": true,
		"authentication_realm": realm, "lookup_realm": realm, "authentication_type": "realm",
	}
	if p.APIKeyID != "" {
		out["authentication_type"] = "api_key"
		out["api_key"] = map[string]any{"id": p.APIKeyID, "name": p.APIKeyName}
		out["metadata"] = map[string]any{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
