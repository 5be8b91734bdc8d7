package stunnel

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// URIScheme is the scheme of identity URIs in certificates:
// paddock://role/<role>/<id>.
const URIScheme = "paddock"

// Identity is who a certificate speaks for: a role (allocator, proxy,
// constructor, director, admin) and the id of the host or agent.
type Identity struct {
	Role string `json:"role"`
	ID   string `json:"id"`
}

func (i Identity) String() string { return i.Role + "/" + i.ID }

// URI is the identity's URI SAN, paddock://role/<role>/<id>.
func (i Identity) URI() *url.URL {
	return &url.URL{Scheme: URIScheme, Host: "role", Path: "/" + i.Role + "/" + i.ID}
}

// IdentityOf reads the identity of a certificate: the first
// paddock://role/<role>/<id> URI SAN, else OU (role) and CN (id).
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	for _, u := range cert.URIs {
		if u.Scheme != URIScheme || u.Host != "role" {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
		if len(parts) == 2 && parts[0] != "" && parts[1] != "" {
			return Identity{Role: parts[0], ID: parts[1]}, nil
		}
	}
	if len(cert.Subject.OrganizationalUnit) > 0 && cert.Subject.CommonName != "" {
		return Identity{Role: cert.Subject.OrganizationalUnit[0], ID: cert.Subject.CommonName}, nil
	}
	return Identity{}, errors.New("certificate names no paddock identity (no paddock://role/<role>/<id> URI SAN, no OU and CN)")
}

// Allow is an allow-list of peers. A peer is admitted when its role is in
// Roles or its "role/id" is in IDs. An empty Allow admits nobody (use
// AnyPeer to admit every certificate the CA signed).
type Allow struct {
	Roles []string `json:"roles,omitempty"`
	IDs   []string `json:"ids,omitempty"`
	// AnyPeer admits every certificate that verifies against the CA.
	AnyPeer bool `json:"any_peer,omitempty"`
}

// ParseAllow reads "role:proxy,role:allocator,id:proxy/p1" or plain role
// names "proxy,allocator".
func ParseAllow(specs []string) (Allow, error) {
	var a Allow
	for _, s := range specs {
		for _, f := range strings.Split(s, ",") {
			f = strings.TrimSpace(f)
			switch {
			case f == "":
			case f == "*" || f == "any":
				a.AnyPeer = true
			case strings.HasPrefix(f, "role:"):
				a.Roles = append(a.Roles, strings.TrimPrefix(f, "role:"))
			case strings.HasPrefix(f, "id:"):
				id := strings.TrimPrefix(f, "id:")
				if !strings.Contains(id, "/") {
					return a, fmt.Errorf("allow entry %q: an id is role/id, e.g. id:proxy/p1", f)
				}
				a.IDs = append(a.IDs, id)
			case strings.Contains(f, ":"):
				return a, fmt.Errorf("allow entry %q: use role:<role>, id:<role>/<id> or *", f)
			default:
				a.Roles = append(a.Roles, f)
			}
		}
	}
	return a, nil
}

// Empty reports whether the list admits nobody.
func (a Allow) Empty() bool { return !a.AnyPeer && len(a.Roles) == 0 && len(a.IDs) == 0 }

// Admits reports whether id may pass.
func (a Allow) Admits(id Identity) bool {
	return a.AnyPeer || slices.Contains(a.Roles, id.Role) || slices.Contains(a.IDs, id.String())
}

func (a Allow) String() string {
	var parts []string
	if a.AnyPeer {
		parts = append(parts, "*")
	}
	for _, r := range a.Roles {
		parts = append(parts, "role:"+r)
	}
	for _, i := range a.IDs {
		parts = append(parts, "id:"+i)
	}
	if len(parts) == 0 {
		return "(nobody)"
	}
	return strings.Join(parts, ",")
}

// RoleDNSName is the DNS SAN every certificate of role carries, so that
// tools matching host names only (stunnel's checkHost) can admit by role.
func RoleDNSName(role string) string { return role + ".role.paddock" }

// IDDNSName is the DNS SAN naming one identity, for the same tools.
func IDDNSName(id Identity) string { return id.ID + "." + id.Role + ".id.paddock" }

// PeerIdentity is the identity of the verified peer of a connection
// (for embedders that terminate TLS with Server.TLSConfig).
func PeerIdentity(cs tls.ConnectionState) (Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return Identity{}, errors.New("no peer certificate")
	}
	return IdentityOf(cs.PeerCertificates[0])
}
