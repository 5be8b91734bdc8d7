package tunnel

import (
	"path/filepath"

	"paddock/agents/agentkit"
	"paddock/stunnel"
)

// StunnelConf is the stunnel.conf equivalent of tunnel end cfg, for
// hosts that run stunnel itself: its certificate files f (made
// absolute, as stunnel reads them from its own directory), the peers of
// allow, and cfg's name and timeouts (0: stunnel's defaults). What
// cannot be rendered is a ConfigError.
func StunnelConf(cfg Config, f Files, allow []string, foreground bool) (string, error) {
	if cfg.Mode != "server" && cfg.Mode != "client" {
		return "", agentkit.ConfigErrorf("--mode must be server or client")
	}
	admit, err := stunnel.ParseAllow(allow)
	if err != nil {
		return "", &agentkit.ConfigError{Err: err}
	}
	o := cfg.Options
	svc := stunnel.ConfService{Name: o.Name, Client: cfg.Mode == "client", Accept: cfg.Listen,
		CertFile: absPath(f.Cert), KeyFile: absPath(f.Key), CAFile: absPath(f.CA), CRLFile: absPath(f.CRL),
		Allow: admit, ConnectTimeout: o.ConnectTimeout, IdleTimeout: o.IdleTimeout}
	if cfg.Mode == "server" {
		svc.Connect = cfg.Target
	} else {
		svc.Connect, svc.SNI = cfg.Connect, cfg.SNI
	}
	out, err := stunnel.RenderConf(stunnel.ConfGlobal{Foreground: foreground}, svc)
	if err != nil {
		return "", &agentkit.ConfigError{Err: err}
	}
	return out, nil
}

// absPath is f made absolute ("" stays "").
func absPath(f string) string {
	if f == "" {
		return ""
	}
	if a, err := filepath.Abs(f); err == nil {
		return a
	}
	return f
}
