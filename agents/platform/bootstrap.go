package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"paddock/agents/agentkit"
	"paddock/engine"
	"paddock/engine/service"
)

// InitConfig says where to create a platform.
type InitConfig struct {
	// ZooKeeper is the connection string (reached directly).
	ZooKeeper string
	StateDir  string
	// Zones to create; an existing platform keeps its zones when
	// KeepZones is set.
	Zones     []string
	KeepZones bool
	Timeout   time.Duration
	Logger    *slog.Logger
}

// InitResult says what Init did.
type InitResult struct {
	ZooKeeper      string `json:"zookeeper"`
	Created        bool   `json:"created"`
	CredentialsDir string `json:"credentials_dir"`
	ConfigFile     string `json:"config_file"`
}

// Init creates (or finds) the platform: role credentials are generated
// once and kept in the state dir; the tree is bootstrapped with the
// admin credential; the config file records the ZooKeeper address for
// the other commands. `paddock init` and up's platform phase run it.
func Init(ctx context.Context, ic InitConfig) (InitResult, error) {
	dir := ic.StateDir
	res := InitResult{ZooKeeper: ic.ZooKeeper, CredentialsDir: filepath.Join(dir, "credentials"), ConfigFile: filepath.Join(dir, "config.yaml")}
	creds, missing := engine.CredentialSet{}, false
	for _, r := range engine.Roles {
		c, err := engine.LoadCredential(engine.CredentialFile(dir, r))
		if err != nil {
			missing = true
			break
		}
		creds[r] = c
	}
	if missing {
		creds = engine.GenerateCredentials()
	}
	s, err := engine.Connect(ctx, engine.Options{Servers: ic.ZooKeeper, Role: engine.RoleAdmin, Credential: creds[engine.RoleAdmin],
		ConnectTimeout: ic.Timeout, Logger: ic.Logger})
	if err != nil {
		return res, err
	}
	defer s.Close()
	ok, _, err := s.Exists(ctx, engine.PathConfig)
	if err != nil {
		return res, err
	}
	res.Created = !ok
	zones := ic.Zones
	if ok && ic.KeepZones {
		zones = nil
	}
	cfg := engine.DefaultPlatformConfig()
	cfg.Identities = creds.Identities()
	if err := engine.Bootstrap(ctx, s, cfg, zones); err != nil {
		return res, err
	}
	if missing {
		for r, c := range creds {
			if err := engine.SaveCredential(engine.CredentialFile(dir, r), c); err != nil {
				return res, err
			}
		}
	}
	// Init reached ZooKeeper directly: so does the CLI (zk-tls off, in
	// case an earlier `paddock up` pointed the config at a tunnel).
	if err := WriteConfigKeys(res.ConfigFile, map[string]any{"zk": res.ZooKeeper, "zk-tls": false}); err != nil {
		return res, err
	}
	return res, nil
}

// WriteConfigKeys merges keys into the YAML config file (0600).
func WriteConfigKeys(file string, kv map[string]any) error {
	m := map[string]any{}
	if b, err := os.ReadFile(file); err == nil {
		if err := yaml.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("config file %s: %w (fix the file or move it away)", file, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for k, v := range kv {
		m[k] = v
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	return agentkit.WriteFileAtomic(file, b, 0o600)
}

// ensureAPIKey keeps one admin API key for the CLI in the state dir: the
// existing one when it still authenticates, else a new one.
func ensureAPIKey(ctx context.Context, svc *service.Service, dir string) (string, string, error) {
	file := filepath.Join(dir, APIKeyFile)
	if b, err := os.ReadFile(file); err == nil {
		key := strings.TrimSpace(string(b))
		if _, err := svc.AuthenticateKey(ctx, key); err == nil {
			return key, file, nil
		}
	}
	_, key, err := svc.CreateAPIKeyBy(ctx, "paddock-up", service.RolePlatformAdmin, "paddock-up")
	if err != nil {
		return "", "", fmt.Errorf("create the admin API key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", "", err
	}
	if err := agentkit.WriteFileAtomic(file, []byte(key+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return key, file, nil
}

// zkSuperPassword is the ZooKeeper super user's password for the
// ZooKeeper up starts (the director needs it to grow the ensemble),
// created once in <state-dir>/credentials/zookeeper-super (0600).
func zkSuperPassword(dir string) (string, error) {
	file := filepath.Join(dir, "credentials", "zookeeper-super")
	if b, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	pw := engine.RandomToken(16)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", err
	}
	if err := agentkit.WriteFileAtomic(file, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}
