package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CredentialSet holds one credential per shared role. `paddock up` and
// the director generate it; each agent gets only its own role's entry.
type CredentialSet map[Role]Credential

// RandomToken returns n random bytes hex-encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// NewID returns a 32-hex-character id (deployments, plans).
func NewID() string { return RandomToken(16) }

// GenerateCredentials makes a fresh random credential for every role.
func GenerateCredentials() CredentialSet {
	cs := CredentialSet{}
	for _, r := range Roles {
		cs[r] = Credential{User: string(r), Password: RandomToken(24)}
	}
	return cs
}

// Identities returns the digest ids of the set.
func (cs CredentialSet) Identities() Identities {
	ids := Identities{}
	for r, c := range cs {
		ids[r] = c.DigestID()
	}
	return ids
}

// CredentialFile is where a role's credential lives under a state dir.
func CredentialFile(stateDir string, role Role) string {
	return filepath.Join(stateDir, "credentials", string(role)+".json")
}

// SaveCredential writes a credential file (mode 0600).
func SaveCredential(file string, c Credential) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return os.WriteFile(file, append(b, '\n'), 0o600)
}

// LoadCredential reads a credential file.
func LoadCredential(file string) (Credential, error) {
	var c Credential
	b, err := os.ReadFile(file)
	if err != nil {
		return c, fmt.Errorf("credential file %s: %w (run `paddock up`, or join with a roles token: `paddock <role> --join DIRECTOR --token T`)", file, err)
	}
	if err := json.Unmarshal(b, &c); err != nil || c.User == "" {
		return c, fmt.Errorf("credential file %s is malformed: want {\"user\":…,\"password\":…}", file)
	}
	return c, nil
}

// DefaultPlatformConfig returns the settings of a new platform.
func DefaultPlatformConfig() PlatformConfig {
	return PlatformConfig{
		Name:                      "paddock",
		Domain:                    "localhost",
		PlacementStrategy:         StrategyFillAntiAffinity,
		LostAllocatorGraceSeconds: 30,
		MaxReplacementsPerMinute:  20,
		Versions:                  append([]string(nil), DefaultVersions...),
	}
}

// Bootstrap creates paddock's tree with the ACLs of the table: run once
// by the admin role when a platform is created (idempotent). cfg must
// carry every role's identity. Zones are created if given.
func Bootstrap(ctx context.Context, s *Store, cfg PlatformConfig, zones []string) error {
	if len(cfg.Identities) == 0 || cfg.Identities[RoleAdmin] == "" {
		return errors.New("bootstrap needs every role's identity in the platform config")
	}
	if cfg.CreatedAt.IsZero() {
		cfg.CreatedAt = time.Now().UTC()
	}
	if cfg.ID == "" {
		cfg.ID = NewID()
	}
	s.SetIdentities(cfg.Identities)
	if err := s.Create(ctx, Root, nil); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	if err := s.Create(ctx, PathConfig, cfg); err != nil {
		if !errors.Is(err, ErrExists) {
			return err
		}
		// Existing platform: it must be ours (readable and writable with
		// these credentials).
		var existing PlatformConfig
		if _, err := s.GetJSON(ctx, PathConfig, &existing); err != nil {
			if errors.Is(err, ErrNoAuth) {
				return fmt.Errorf("ZooKeeper at %s already holds a paddock platform created with other credentials: use that platform's credentials (~/.paddock/credentials) or wipe it with `paddock down --purge`: %w", s.Servers(), err)
			}
			return err
		}
		s.SetIdentities(existing.Identities)
	}
	for _, p := range []string{PathZones, PathAllocators, PathDeployments, PathRoutes, PathProxies,
		PathLeader, PathLeaderCons, PathSecurity, PathAPIKeys, PathRequests, PathTrafficFilters, PathCredentials,
		PathRepositories, PathSnapshots, PathRestores} {
		if err := s.Create(ctx, p, nil); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
	}
	for _, z := range zones {
		if err := s.Create(ctx, ZonePath(z), Zone{Name: z, CreatedAt: time.Now().UTC()}); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
	}
	return nil
}

// Platform reads the platform config.
func (s *Store) Platform(ctx context.Context) (PlatformConfig, Version, error) {
	var cfg PlatformConfig
	v, err := s.GetJSON(ctx, PathConfig, &cfg)
	return cfg, v, err
}
