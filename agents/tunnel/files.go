package tunnel

import (
	"fmt"

	"paddock/agents/agentkit"
	"paddock/stunnel"
)

// Files name a tunnel end's certificate, key, CA bundle and revocation
// list (the tunnel commands' --cert, --key, --ca and --crl).
type Files struct{ Cert, Key, CA, CRL string }

// FileOptions are the options of tunnel end name with its certificate
// from files, admitting the peers of allow (role:<role>,
// id:<role>/<id>, *). Tunnels always use mutual TLS: every file but the
// CRL and at least one admitted peer are required (a ConfigError
// otherwise).
func FileOptions(name string, f Files, allow []string) (stunnel.Options, error) {
	for _, m := range []struct{ flag, file string }{{"cert", f.Cert}, {"key", f.Key}, {"ca", f.CA}} {
		if m.file == "" {
			return stunnel.Options{}, agentkit.ConfigErrorf("--%s is required: tunnels always use mutual TLS (get a certificate from the director, or `paddock tunnel cert` for a test CA)", m.flag)
		}
	}
	admit, err := stunnel.ParseAllow(allow)
	if err != nil {
		return stunnel.Options{}, &agentkit.ConfigError{Err: err}
	}
	if admit.Empty() {
		return stunnel.Options{}, agentkit.ConfigErrorf("--allow is required: say which peers may connect (role:<role>, id:<role>/<id>, or * for any certificate of the CA)")
	}
	l, err := stunnel.NewFileLoader(f.Cert, f.Key, f.CA, f.CRL)
	if err != nil {
		return stunnel.Options{}, fmt.Errorf("load the tunnel certificate: %w", err)
	}
	return stunnel.Options{Name: name, Loader: l, Allow: admit}, nil
}
