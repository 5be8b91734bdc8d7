package node

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"paddock/agents/node/eserr"
	"paddock/agents/node/shard"
)

var bucketAPIKeys = []byte("api_keys")

// apiKey is a stored API key: its secret only as a bcrypt hash.
type apiKey struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Hash       string         `json:"hash"`
	Creation   int64          `json:"creation"`
	Expiration int64          `json:"expiration,omitempty"`
	Username   string         `json:"username"`
	Realm      string         `json:"realm"`
	Metadata   map[string]any `json:"metadata,omitempty"`

	Invalidated  bool  `json:"invalidated"`
	Invalidation int64 `json:"invalidation,omitempty"`
}

// apiKeyStore keeps API keys in the node's bbolt file.
type apiKeyStore struct{ db *bolt.DB }

func (st *apiKeyStore) get(id string) (apiKey, bool, error) {
	var k apiKey
	found := false
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &k)
	})
	return k, found, err
}

func (st *apiKeyStore) put(k apiKey) error {
	v, err := json.Marshal(k)
	if err != nil {
		return err
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketAPIKeys)
		if err != nil {
			return err
		}
		return b.Put([]byte(k.ID), v)
	})
}

func (st *apiKeyStore) all() ([]apiKey, error) {
	var out []apiKey
	err := st.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var k apiKey
			if err := json.Unmarshal(v, &k); err != nil {
				return err
			}
			out = append(out, k)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Creation < out[j].Creation })
	return out, err
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) securityRoutes(rt *router) {
	rt.add("GET", "/_security/_authenticate", s.authenticateResponse)
	rt.add("PUT,POST", "/_security/api_key", s.metaWrite(s.createAPIKey))
	rt.add("GET", "/_security/api_key", s.getAPIKeys)
	rt.add("DELETE", "/_security/api_key", s.metaWrite(s.invalidateAPIKeys))
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, _ params) error {
	var body struct {
		Name            string         `json:"name"`
		Expiration      string         `json:"expiration"`
		Metadata        map[string]any `json:"metadata"`
		RoleDescriptors map[string]any `json:"role_descriptors"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.Name == "" {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception", "Validation Failed: 1: api key name is required;")
	}
	p := PrincipalOf(r.Context())
	owner, realm := "_anonymous", "__anonymous"
	if p != nil {
		owner, realm = p.Username, p.Realm
	}
	now := s.now()
	k := apiKey{ID: randomToken(15), Name: body.Name, Creation: now.UnixMilli(), Username: owner, Realm: realm, Metadata: body.Metadata}
	if body.Expiration != "" {
		d, err := shard.ParseDuration(body.Expiration)
		if err != nil || d <= 0 {
			return eserr.BadRequest("failed to parse setting [expiration] with value [%s] as a time value: use a number and a unit such as 1d, 12h or 30m", body.Expiration)
		}
		k.Expiration = now.Add(d).UnixMilli()
	}
	secret := randomToken(16)
	hash, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	k.Hash = string(hash)
	if err := s.keys.put(k); err != nil {
		return err
	}
	out := map[string]any{"id": k.ID, "name": k.Name, "api_key": secret,
		"encoded": base64.StdEncoding.EncodeToString([]byte(k.ID + ":" + secret))}
	if k.Expiration > 0 {
		out["expiration"] = k.Expiration
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// keyFilter is the selection of GET and DELETE /_security/api_key.
type keyFilter struct {
	IDs       []string
	Name      string
	Username  string
	RealmName string
	Owner     bool
}

func (f keyFilter) empty() bool {
	return len(f.IDs) == 0 && f.Name == "" && f.Username == "" && f.RealmName == "" && !f.Owner
}

func (f keyFilter) match(k apiKey, p *Principal) bool {
	if len(f.IDs) > 0 && !slices.Contains(f.IDs, k.ID) {
		return false
	}
	if f.Name != "" && !wildcardMatch(f.Name, k.Name) {
		return false
	}
	if f.Username != "" && f.Username != k.Username {
		return false
	}
	if f.RealmName != "" && f.RealmName != k.Realm {
		return false
	}
	if f.Owner && (p == nil || p.Username != k.Username) {
		return false
	}
	return true
}

// wildcardMatch matches Elasticsearch's name patterns: "*" or a prefix
// followed by "*".
func wildcardMatch(pattern, s string) bool {
	if pattern == "*" {
		return true
	}
	if prefix, ok := cutStar(pattern); ok {
		return len(s) >= len(prefix) && s[:len(prefix)] == prefix
	}
	return pattern == s
}

func cutStar(p string) (string, bool) {
	if len(p) > 0 && p[len(p)-1] == '*' {
		return p[:len(p)-1], true
	}
	return "", false
}

func keyJSON(k apiKey) map[string]any {
	m := map[string]any{"id": k.ID, "name": k.Name, "creation": k.Creation, "invalidated": k.Invalidated,
		"username": k.Username, "realm": k.Realm, "metadata": k.Metadata}
	if k.Metadata == nil {
		m["metadata"] = map[string]any{}
	}
	if k.Expiration > 0 {
		m["expiration"] = k.Expiration
	}
	if k.Invalidation > 0 {
		m["invalidation"] = k.Invalidation
	}
	return m
}

func (s *Server) getAPIKeys(w http.ResponseWriter, r *http.Request, _ params) error {
	q := r.URL.Query()
	f := keyFilter{Name: q.Get("name"), Username: q.Get("username"), RealmName: q.Get("realm_name"), Owner: q.Get("owner") == "true"}
	if id := q.Get("id"); id != "" {
		f.IDs = []string{id}
	}
	keys, err := s.keys.all()
	if err != nil {
		return err
	}
	out := []any{}
	for _, k := range keys {
		if f.match(k, PrincipalOf(r.Context())) {
			out = append(out, keyJSON(k))
		}
	}
	if len(f.IDs) > 0 && len(out) == 0 {
		return eserr.New(http.StatusNotFound, "resource_not_found_exception", "unable to find apikey with id %s", f.IDs[0])
	}
	writeJSON(w, http.StatusOK, map[string]any{"api_keys": out})
	return nil
}

func (s *Server) invalidateAPIKeys(w http.ResponseWriter, r *http.Request, _ params) error {
	var body struct {
		ID        string   `json:"id"`
		IDs       []string `json:"ids"`
		Name      string   `json:"name"`
		Username  string   `json:"username"`
		RealmName string   `json:"realm_name"`
		Owner     bool     `json:"owner"`
	}
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	f := keyFilter{IDs: body.IDs, Name: body.Name, Username: body.Username, RealmName: body.RealmName, Owner: body.Owner}
	if body.ID != "" {
		f.IDs = append(f.IDs, body.ID)
	}
	if f.empty() {
		return eserr.New(http.StatusBadRequest, "action_request_validation_exception",
			"Validation Failed: 1: One of [api key id(s), api key name, username, realm name] must be specified if [owner] flag is false;")
	}
	keys, err := s.keys.all()
	if err != nil {
		return err
	}
	invalidated, previously := []string{}, []string{}
	now := s.now().UnixMilli()
	for _, k := range keys {
		if !f.match(k, PrincipalOf(r.Context())) {
			continue
		}
		if k.Invalidated {
			previously = append(previously, k.ID)
			continue
		}
		k.Invalidated, k.Invalidation = true, now
		if err := s.keys.put(k); err != nil {
			return err
		}
		invalidated = append(invalidated, k.ID)
	}
	s.sec.forget()
	writeJSON(w, http.StatusOK, map[string]any{"invalidated_api_keys": invalidated,
		"previously_invalidated_api_keys": previously, "error_count": 0})
	return nil
}
