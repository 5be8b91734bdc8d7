package agentkit

import "fmt"

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
