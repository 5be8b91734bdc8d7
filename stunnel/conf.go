package stunnel

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// ConfService is one [service] of a stunnel.conf.
type ConfService struct {
	Name string
	// Client mode accepts plain and connects with TLS; server mode the
	// reverse.
	Client                    bool
	Accept, Connect           string
	CertFile, KeyFile, CAFile string
	CRLFile                   string
	// Allow is rendered as checkHost lines: stunnel matches host names
	// only, so roles and ids map to the DNS SANs every paddock
	// certificate carries (RoleDNSName, IDDNSName). AnyPeer renders no
	// check (any certificate of the CA).
	Allow Allow
	// SNI sent in client mode.
	SNI string
	// Timeouts (0: stunnel's defaults).
	ConnectTimeout, IdleTimeout time.Duration
}

// ConfGlobal holds the global options of a stunnel.conf.
type ConfGlobal struct {
	Foreground bool
	PidFile    string // "" disables the pid file
	Output     string // log file ("" for stderr in foreground)
	Debug      int    // syslog level 0-7 (default 5)
}

// RenderConf writes a stunnel.conf equivalent to paddock tunnels: mutual
// TLS with the CA, TLS 1.2 at least (1.3 preferred by OpenSSL), peers
// checked by the role/id DNS SANs.
func RenderConf(g ConfGlobal, services ...ConfService) (string, error) {
	var b strings.Builder
	b.WriteString("; stunnel.conf rendered by `paddock tunnel config`.\n")
	b.WriteString("; Mutual TLS: both ends present a certificate signed by the paddock CA.\n")
	if g.Foreground {
		b.WriteString("foreground = yes\n")
	}
	fmt.Fprintf(&b, "pid = %s\n", g.PidFile)
	if g.Output != "" {
		fmt.Fprintf(&b, "output = %s\n", g.Output)
	}
	debug := g.Debug
	if debug == 0 {
		debug = 5
	}
	fmt.Fprintf(&b, "debug = %d\n", debug)
	for _, s := range services {
		if s.Name == "" || s.Accept == "" || s.Connect == "" {
			return "", fmt.Errorf("stunnel service needs a name, an accept and a connect address")
		}
		if s.CertFile == "" || s.KeyFile == "" || s.CAFile == "" {
			return "", fmt.Errorf("stunnel service %s needs cert, key and CA files (mutual TLS is always on)", s.Name)
		}
		if s.Allow.Empty() {
			return "", fmt.Errorf("stunnel service %s has an empty allow-list: say which roles or ids may connect", s.Name)
		}
		fmt.Fprintf(&b, "\n[%s]\n", s.Name)
		if s.Client {
			b.WriteString("client = yes\n")
		} else {
			b.WriteString("client = no\n")
		}
		fmt.Fprintf(&b, "accept = %s\nconnect = %s\n", s.Accept, s.Connect)
		fmt.Fprintf(&b, "cert = %s\nkey = %s\nCAfile = %s\n", s.CertFile, s.KeyFile, s.CAFile)
		if s.CRLFile != "" {
			fmt.Fprintf(&b, "CRLfile = %s\n", s.CRLFile)
		}
		b.WriteString("verifyChain = yes\n")
		if !s.Client {
			b.WriteString("requireCert = yes\n")
		}
		b.WriteString("sslVersionMin = TLSv1.2\n")
		if s.Client && s.SNI != "" {
			fmt.Fprintf(&b, "sni = %s\n", s.SNI)
		}
		if !s.Allow.AnyPeer {
			var hosts []string
			for _, r := range s.Allow.Roles {
				hosts = append(hosts, RoleDNSName(r))
			}
			for _, id := range s.Allow.IDs {
				role, i, _ := strings.Cut(id, "/")
				hosts = append(hosts, IDDNSName(Identity{Role: role, ID: i}))
			}
			sort.Strings(hosts)
			for _, h := range hosts {
				fmt.Fprintf(&b, "checkHost = %s\n", h)
			}
		}
		if s.ConnectTimeout > 0 {
			fmt.Fprintf(&b, "TIMEOUTconnect = %d\n", int(s.ConnectTimeout.Seconds()))
		}
		if s.IdleTimeout > 0 {
			fmt.Fprintf(&b, "TIMEOUTidle = %d\n", int(s.IdleTimeout.Seconds()))
		}
	}
	return b.String(), nil
}
