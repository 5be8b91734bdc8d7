package engine

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/go-zookeeper/zk"
)

// Role is a platform identity with its own ZooKeeper digest credential.
type Role string

// The roles of DESIGN.md's ACL matrix. The API, the console and the CLI
// share the admin role.
const (
	RoleAdmin       Role = "admin"
	RoleConstructor Role = "constructor"
	RoleAllocator   Role = "allocator"
	RoleProxy       Role = "proxy"
	RoleDirector    Role = "director"
	// RoleOwn stands for "the allocator <id> the path belongs to": each
	// allocator has a digest identity of its own, named allocator-<id>.
	RoleOwn Role = "own"
)

// Roles lists the shared roles (RoleOwn is per allocator).
var Roles = []Role{RoleAdmin, RoleConstructor, RoleAllocator, RoleProxy, RoleDirector}

// RoleNames are the names of roles, in order (certificate identities,
// tunnel admission lists).
func RoleNames(roles []Role) []string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return names
}

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q: use one of admin, constructor, allocator, proxy, director", s)
}

// Credential is a ZooKeeper digest user and password.
type Credential struct {
	User     string `json:"user" yaml:"user"`
	Password string `json:"password" yaml:"password"`
}

// DigestID is ZooKeeper's digest id "user:base64(sha1(user:password))".
// It is what ACLs name; it does not reveal the password.
func (c Credential) DigestID() string {
	h := sha1.Sum([]byte(c.User + ":" + c.Password))
	return c.User + ":" + base64.StdEncoding.EncodeToString(h[:])
}

// OwnAllocatorUser is the digest user name of allocator id.
func OwnAllocatorUser(id string) string { return "allocator-" + id }

// Identities maps a role to its digest id, as published in the platform
// config so that every role can create znodes whose ACL names the others.
type Identities map[Role]string

// Perm sets, in ZooKeeper's bits.
const (
	permR   = zk.PermRead
	permRC  = zk.PermRead | zk.PermCreate
	permRCD = zk.PermRead | zk.PermCreate | zk.PermDelete
	permRD  = zk.PermRead | zk.PermDelete
	permRW  = zk.PermAll
)

// aclRule is one row of the ACL table: a path pattern (segments relative
// to Root, "*" matches one segment, "**" the rest) and what each role may do.
type aclRule struct {
	pattern string
	perms   map[Role]int32
	// world grants read to everyone (public data such as the CA cert).
	world bool
}

// aclTable is DESIGN.md's "who may touch what", the one place it lives.
// The first matching rule wins. Create/delete rights on a node are the
// parent's, so parents grant C/D to the role that adds children.
var aclTable = []aclRule{
	{pattern: "", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permR, RoleAllocator: permR, RoleProxy: permR, RoleDirector: permRC}},
	{pattern: "config", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permR, RoleAllocator: permR, RoleProxy: permR, RoleDirector: permR}},
	{pattern: "zones/**", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permR, RoleAllocator: permR, RoleProxy: permR, RoleDirector: permR}},
	{pattern: "allocators", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permR, RoleAllocator: permRC, RoleProxy: permR, RoleDirector: permRC}},
	{pattern: "allocators/*", perms: map[Role]int32{RoleOwn: permRW, RoleAdmin: permRCD, RoleConstructor: permR, RoleProxy: permR, RoleDirector: permR}},
	{pattern: "allocators/*/alive", perms: map[Role]int32{RoleOwn: permRW, RoleAdmin: permR, RoleConstructor: permR, RoleProxy: permR, RoleDirector: permR}},
	{pattern: "allocators/*/maintenance", perms: map[Role]int32{RoleAdmin: permRW, RoleOwn: permR, RoleConstructor: permR, RoleProxy: permR}},
	{pattern: "allocators/*/settings", perms: map[Role]int32{RoleAdmin: permRW, RoleOwn: permR, RoleConstructor: permR}},
	{pattern: "allocators/*/instances", perms: map[Role]int32{RoleConstructor: permRW, RoleOwn: permR, RoleAdmin: permRD}},
	{pattern: "allocators/*/instances/*", perms: map[Role]int32{RoleConstructor: permRW, RoleOwn: permR, RoleAdmin: permR}},
	{pattern: "allocators/*/status", perms: map[Role]int32{RoleOwn: permRW, RoleAdmin: permRD, RoleConstructor: permR}},
	{pattern: "allocators/*/status/*", perms: map[Role]int32{RoleOwn: permRW, RoleAdmin: permR, RoleConstructor: permR}},
	// The replication authority: only the leading constructor writes a
	// deployment's routing (replication.go); admins read it for health.
	{pattern: "deployments/*/replication", perms: map[Role]int32{RoleConstructor: permRW, RoleAdmin: permR}},
	{pattern: "deployments/**", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permRW}},
	{pattern: "routes/**", perms: map[Role]int32{RoleConstructor: permRW, RoleAdmin: permR, RoleProxy: permR}},
	{pattern: "proxies", perms: map[Role]int32{RoleProxy: permRC, RoleAdmin: permRD, RoleConstructor: permR}},
	{pattern: "proxies/*", perms: map[Role]int32{RoleProxy: permRW, RoleAdmin: permR, RoleConstructor: permR}},
	{pattern: "leader", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permR}},
	{pattern: "leader/**", perms: map[Role]int32{RoleConstructor: permRW, RoleAdmin: permR}},
	{pattern: "security/ca", perms: map[Role]int32{RoleDirector: permRW}, world: true},
	{pattern: "security/**", perms: map[Role]int32{RoleDirector: permRW}},
	{pattern: "apikeys/**", perms: map[Role]int32{RoleAdmin: permRW}},
	{pattern: "requests/**", perms: map[Role]int32{RoleAdmin: permRW}},
	// Deployment credentials: password hashes and the platform secret,
	// for the nodes (through their allocator) and the constructor's calls.
	{pattern: "credentials/**", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permR, RoleAllocator: permR}},
	{pattern: "trafficfilters/**", perms: map[Role]int32{RoleAdmin: permRW, RoleProxy: permR}},
	// Snapshot repositories and their S3 keys: the admin writes them, the
	// constructor reads them to register them on nodes; nobody else.
	{pattern: "repositories/**", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permR}},
	// Snapshot policies, records and restores: asked by admins, run and
	// recorded by the constructor.
	{pattern: "snapshots/**", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permRW}},
	{pattern: "restores/**", perms: map[Role]int32{RoleAdmin: permRW, RoleConstructor: permRW}},
}

func matchPattern(pattern string, segs []string) bool {
	if pattern == "" {
		return len(segs) == 0
	}
	ps := strings.Split(pattern, "/")
	for i, p := range ps {
		if p == "**" {
			return len(segs) >= i
		}
		if i >= len(segs) {
			return false
		}
		if p != "*" && p != segs[i] {
			return false
		}
	}
	return len(ps) == len(segs)
}

// ruleFor returns the ACL rule of a path under Root.
func ruleFor(p string) (aclRule, bool) {
	segs := splitPath(p)
	for _, r := range aclTable {
		if matchPattern(r.pattern, segs) {
			return r, true
		}
	}
	return aclRule{}, false
}

// NeedsOwnIdentity reports whether p's ACL names the allocator it belongs
// to, and which allocator that is.
func NeedsOwnIdentity(p string) (string, bool) {
	r, ok := ruleFor(p)
	if !ok {
		return "", false
	}
	if _, own := r.perms[RoleOwn]; !own {
		return "", false
	}
	segs := splitPath(p)
	return segs[1], true
}

// ACLFor computes the ACL of the znode at p from the table. ids names each
// role's digest id; own is the digest id of the allocator p belongs to
// (needed only for allocator paths). Roles without a known identity are
// left out; a path outside the table is an error.
func ACLFor(p string, ids Identities, own string) ([]zk.ACL, error) {
	r, ok := ruleFor(p)
	if !ok {
		return nil, fmt.Errorf("no ACL rule for %s: paths are declared in engine/acl.go", p)
	}
	var acl []zk.ACL
	for _, role := range append([]Role{RoleOwn}, Roles...) {
		perms, ok := r.perms[role]
		if !ok {
			continue
		}
		id := ids[role]
		if role == RoleOwn {
			id = own
			if id == "" {
				return nil, fmt.Errorf("ACL of %s names its allocator, whose identity is unknown: register the allocator first", p)
			}
		}
		if id == "" {
			continue
		}
		acl = append(acl, zk.ACL{Perms: perms, Scheme: "digest", ID: id})
	}
	if r.world {
		acl = append(acl, zk.ACL{Perms: zk.PermRead, Scheme: "world", ID: "anyone"})
	}
	if len(acl) == 0 {
		return nil, fmt.Errorf("ACL of %s would grant nobody access: the platform identities are not configured", p)
	}
	return acl, nil
}

// CanWrite tells whether role may write (set data) at p, by the table.
// Used by tests and by `paddock` to explain refusals.
func CanWrite(role Role, p string) bool {
	r, ok := ruleFor(p)
	return ok && r.perms[role]&zk.PermWrite != 0
}
