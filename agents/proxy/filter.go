package proxy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"paddock/engine"
)

// Traffic filters: a deployment with rule sets attached accepts only
// sources that one of them allows; without any it is open. The rule
// sets come from /paddock/trafficfilters through the same table (and
// disk cache) as the routes, so they hold while ZooKeeper is away.

// filter is the union of the rule sets attached to one deployment,
// as masks (a compare per rule: netip.Prefix.Contains costs ten times
// more).
type filter struct {
	v4 []rule4
	v6 []rule6
	// sets names the rule sets, for the refusal's message.
	sets string
}

type rule4 struct{ net, mask uint32 }

type rule6 struct{ hi, lo, mhi, mlo uint64 }

func ruleOf(p netip.Prefix) (rule4, rule6, bool) {
	p = p.Masked()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		mask := uint32(0)
		if p.Bits() > 0 {
			mask = ^uint32(0) << (32 - p.Bits())
		}
		return rule4{binary.BigEndian.Uint32(b[:]), mask}, rule6{}, true
	}
	b := p.Addr().As16()
	bits := p.Bits()
	mhi, mlo := uint64(0), uint64(0)
	switch {
	case bits >= 64:
		mhi = ^uint64(0)
		if bits > 64 {
			mlo = ^uint64(0) << (128 - bits)
		}
	case bits > 0:
		mhi = ^uint64(0) << (64 - bits)
	}
	return rule4{}, rule6{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), mhi, mlo}, false
}

// allows reports whether a passes one of the rules. It does not
// allocate.
func (f *filter) allows(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		x := binary.BigEndian.Uint32(b[:])
		for _, r := range f.v4 {
			if x&r.mask == r.net {
				return true
			}
		}
		return false
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for _, r := range f.v6 {
		if hi&r.mhi == r.hi && lo&r.mlo == r.lo {
			return true
		}
	}
	return false
}

// buildFilters derives each deployment's filter from the rule sets.
// A rule that does not parse is left out (logged by bad): the rule set
// then allows less, never more.
func buildFilters(sets map[string]engine.TrafficFilterRuleSet, bad func(set, source string, err error)) map[string]*filter {
	ids := make([]string, 0, len(sets))
	for id := range sets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := map[string]*filter{}
	names := map[string][]string{}
	for _, id := range ids {
		rs := sets[id]
		var v4 []rule4
		var v6 []rule6
		for _, r := range rs.Rules {
			p, err := engine.ParseSource(r.Source)
			if err != nil {
				bad(id, r.Source, err)
				continue
			}
			if r4, r6, is4 := ruleOf(p); is4 {
				v4 = append(v4, r4)
			} else {
				v6 = append(v6, r6)
			}
		}
		for _, a := range rs.Associations {
			if a.EntityType != engine.AssociationDeployment {
				continue
			}
			f := out[a.ID]
			if f == nil {
				f = &filter{}
				out[a.ID] = f
			}
			f.v4 = append(f.v4, v4...)
			f.v6 = append(f.v6, v6...)
			names[a.ID] = append(names[a.ID], fmt.Sprintf("%s (%s)", rs.Name, id))
		}
	}
	for dep, f := range out {
		f.sets = strings.Join(names[dep], ", ")
	}
	return out
}

// prefixesContain reports whether a is in one of ps.
func prefixesContain(ps []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for i := range ps {
		if ps[i].Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr is the address the request comes from: the peer, or, when
// the peer is a trusted load balancer, the rightmost X-Forwarded-For
// entry that is not itself trusted (entries left of it could be forged
// by the client). A malformed entry stops the walk at the last trusted
// hop. It does not allocate.
func clientAddr(trusted []netip.Prefix, peer netip.Addr, r *request) netip.Addr {
	if len(trusted) == 0 || !prefixesContain(trusted, peer) {
		return peer
	}
	client := peer
	for i := len(r.fields) - 1; i >= 0; i-- {
		f := r.fields[i]
		if f.class != hXFF {
			continue
		}
		v := r.value(f)
		for len(v) > 0 {
			var tok []byte
			if j := bytes.LastIndexByte(v, ','); j >= 0 {
				tok, v = v[j+1:], v[:j]
			} else {
				tok, v = v, nil
			}
			tok = bytes.TrimSpace(tok)
			if len(tok) == 0 {
				continue
			}
			a, ok := parseXFFAddr(tok)
			if !ok {
				return client
			}
			client = a
			if !prefixesContain(trusted, a) {
				return a
			}
		}
	}
	return client
}

// parseXFFAddr parses one X-Forwarded-For entry: an address, possibly
// with a port ("192.0.2.7:5123", "[2001:db8::1]:443").
func parseXFFAddr(b []byte) (netip.Addr, bool) {
	s := bstr(b)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// refuse is the answer to a source the deployment's filters refuse.
func refuse(id string, a netip.Addr, f *filter, r *request) *reply {
	return &reply{403, "security_exception",
		fmt.Sprintf("source [%s] is not allowed by the traffic filters of deployment [%s]: %s; attach a rule set that allows it (paddock traffic-filter attach)", a, id, f.sets),
		r.hasBody() || r.close}
}

// ParsePrefixes parses a comma-separated list of addresses and CIDR
// blocks (--trusted-proxies).
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		p, err := engine.ParseSource(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
