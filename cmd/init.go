package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"paddock/engine"
)

// newInitCmd: `paddock init` creates a platform in a running ZooKeeper:
// fresh role credentials in the state dir, the tree with its ACLs, the
// zones, and a config file for the other commands. `paddock up` calls
// the same code.
func newInitCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "init",
		Short: "Create a platform in a running ZooKeeper (credentials, tree, ACLs, zones)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), app.V.GetDuration("timeout")+10e9)
			defer cancel()
			zones := app.V.GetStringSlice("zone-names")
			if len(zones) == 0 {
				for i := 1; i <= app.V.GetInt("zones"); i++ {
					zones = append(zones, fmt.Sprintf("zone-%d", i))
				}
			}
			res, err := InitPlatform(ctx, app, zones)
			if err != nil {
				return err
			}
			if app.JSON() {
				return app.PrintJSON(res)
			}
			if res.Created {
				fmt.Fprintf(app.Out, "platform created in ZooKeeper %s (zones: %s)\ncredentials in %s\n", res.ZooKeeper, strings.Join(zones, ", "), res.CredentialsDir)
			} else {
				fmt.Fprintf(app.Out, "platform already present in ZooKeeper %s; credentials in %s\n", res.ZooKeeper, res.CredentialsDir)
			}
			return nil
		},
	}
	c.Flags().Int("zones", 3, "number of zones to create (zone-1 … zone-N)")
	c.Flags().StringSlice("zone-names", nil, "explicit zone names (instead of --zones)")
	return c
}

// InitResult says what init did.
type InitResult struct {
	ZooKeeper      string `json:"zookeeper"`
	Created        bool   `json:"created"`
	CredentialsDir string `json:"credentials_dir"`
	ConfigFile     string `json:"config_file"`
}

// InitPlatform creates (or finds) the platform: role credentials are
// generated once and kept in the state dir; the tree is bootstrapped
// with the admin credential; the config file records the ZooKeeper
// address for the other commands.
func InitPlatform(ctx context.Context, app *App, zones []string) (InitResult, error) {
	dir := app.StateDir()
	res := InitResult{ZooKeeper: app.V.GetString("zk"), CredentialsDir: dir + "/credentials", ConfigFile: dir + "/config.yaml"}
	creds := engine.CredentialSet{}
	missing := false
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
	s, err := engine.Connect(ctx, engine.Options{Servers: res.ZooKeeper, Role: engine.RoleAdmin, Credential: creds[engine.RoleAdmin],
		ConnectTimeout: app.V.GetDuration("timeout"), Logger: app.Log})
	if err != nil {
		return res, err
	}
	defer s.Close()
	ok, _, err := s.Exists(ctx, engine.PathConfig)
	if err != nil {
		return res, err
	}
	res.Created = !ok
	if ok && !app.V.IsSet("zones") && !app.V.IsSet("zone-names") {
		zones = nil // an existing platform keeps its zones unless asked
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
	// init reached ZooKeeper directly: so does the CLI (zk-tls off, in
	// case an earlier `paddock up` pointed the config at a tunnel).
	if err := writeConfigKeys(res.ConfigFile, map[string]any{"zk": res.ZooKeeper, "zk-tls": false}); err != nil {
		return res, err
	}
	return res, nil
}

// writeConfigKeys merges keys into the YAML config file (0600).
func writeConfigKeys(file string, kv map[string]any) error {
	m := map[string]any{}
	if b, err := os.ReadFile(file); err == nil {
		if err := yaml.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("config file %s: %w", file, err)
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
	if err := os.MkdirAll(dirOf(file), 0o700); err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o600)
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i > 0 {
		return p[:i]
	}
	return "."
}
