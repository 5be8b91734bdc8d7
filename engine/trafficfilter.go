package engine

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Traffic filter rule set types (ECE's names; only "ip" is enforced).
const TrafficFilterIP = "ip"

// AssociationDeployment is the only entity type a rule set attaches to.
const AssociationDeployment = "deployment"

// TrafficFilterRuleSet is /paddock/trafficfilters/<id> (admin writes,
// proxies read): a named set of IP/CIDR sources, and the deployments it
// is attached to. The attachments live in the rule set itself so that a
// proxy reads one subtree to enforce every filter (see
// docs/architecture.md, "Traffic filters").
type TrafficFilterRuleSet struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type"`
	Region      string `json:"region,omitempty"`
	// IncludeByDefault attaches the rule set to deployments created
	// after it.
	IncludeByDefault bool                       `json:"include_by_default"`
	Rules            []TrafficFilterRule        `json:"rules"`
	Associations     []TrafficFilterAssociation `json:"associations,omitempty"`
	CreatedAt        time.Time                  `json:"created_at"`
	UpdatedAt        time.Time                  `json:"updated_at"`
}

// TrafficFilterRule is one allowed source: an IP address or a CIDR block.
type TrafficFilterRule struct {
	Source      string `json:"source"`
	Description string `json:"description,omitempty"`
}

// TrafficFilterAssociation attaches a rule set to an entity.
type TrafficFilterAssociation struct {
	EntityType string `json:"entity_type"`
	ID         string `json:"id"`
}

// TrafficFilterPath returns /paddock/trafficfilters/<id>.
func TrafficFilterPath(id string) string { return PathTrafficFilters + "/" + id }

// ParseSource parses a rule's source: an IPv4/IPv6 address (a /32 or
// /128) or a CIDR block. Host bits past the prefix are an error, as
// they usually mean a typo (10.0.0.1/8).
func ParseSource(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Prefix{}, fmt.Errorf("empty source: give an IP address (192.0.2.7) or a CIDR block (10.0.0.0/8)")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("source %q is neither an IP address nor a CIDR block (examples: 192.0.2.7, 10.0.0.0/8, 2001:db8::/32)", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("source %q is not a valid CIDR block (examples: 10.0.0.0/8, 2001:db8::/32): %v", s, err)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("source %q has host bits set past its /%d prefix: did you mean %s?", s, p.Bits(), p.Masked())
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p, nil
}

// AttachedTo reports whether the rule set is attached to deployment id.
func (r TrafficFilterRuleSet) AttachedTo(id string) bool {
	for _, a := range r.Associations {
		if a.EntityType == AssociationDeployment && a.ID == id {
			return true
		}
	}
	return false
}
