package agentkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// ConfigError is an agent Config the operator must correct (the CLI
// exits with its usage code): agents return it from Run before they
// start anything.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// ConfigErrorf formats a ConfigError.
func ConfigErrorf(format string, args ...any) error {
	return &ConfigError{Err: fmt.Errorf(format, args...)}
}

// DefaultStateDir is $PADDOCK_HOME, else ~/.paddock.
func DefaultStateDir() string {
	if h := os.Getenv("PADDOCK_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".paddock"
	}
	return filepath.Join(home, ".paddock")
}

// BindSettings gives every setting of a command its value by the CLI
// contract's precedence: flags, then PADDOCK_* environment (a flag
// --zk-tls is PADDOCK_ZK_TLS), then the config file (--config, else
// <state-dir>/config.yaml when it exists), then the flag's default.
// A config file that does not parse, or a --config that does not exist,
// is a ConfigError naming it.
func BindSettings(v *viper.Viper, flags *pflag.FlagSet) error {
	v.SetEnvPrefix("PADDOCK")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_", ".", "_"))
	v.AutomaticEnv()
	var bindErr error
	flags.VisitAll(func(f *pflag.Flag) {
		if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
			bindErr = err
		}
	})
	if bindErr != nil {
		return bindErr
	}
	cfgFile := v.GetString("config")
	explicit := cfgFile != ""
	if !explicit {
		cfgFile = filepath.Join(v.GetString("state-dir"), "config.yaml")
	}
	if _, err := os.Stat(cfgFile); err != nil {
		if explicit {
			return ConfigErrorf("config file %s: %v", cfgFile, err)
		}
		return nil
	}
	v.SetConfigFile(cfgFile)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		// viper wraps the YAML error, whose own text carries "line N".
		var pe viper.ConfigParseError
		if errors.As(err, &pe) {
			if u := errors.Unwrap(pe); u != nil {
				err = u
			}
		}
		return ConfigErrorf("config file %s: %v: fix the file or move it away", cfgFile, err)
	}
	return nil
}
