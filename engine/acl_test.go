package engine

import (
	"testing"

	"github.com/go-zookeeper/zk"
)

func TestACLTable(t *testing.T) {
	ids := Identities{RoleAdmin: "admin:A", RoleConstructor: "constructor:C", RoleAllocator: "allocator:L",
		RoleProxy: "proxy:P", RoleDirector: "director:D"}
	cases := []struct {
		path  string
		own   string
		role  string // digest id
		perms int32
	}{
		{Root, "", "proxy:P", zk.PermRead},
		{PathConfig, "", "admin:A", zk.PermAll},
		{PathConfig, "", "constructor:C", zk.PermRead},
		{ZonePath("z1"), "", "allocator:L", zk.PermRead},
		{PathAllocators, "", "allocator:L", zk.PermRead | zk.PermCreate},
		{AllocatorPath("a1"), "allocator-a1:X", "allocator-a1:X", zk.PermAll},
		{AllocatorPath("a1"), "allocator-a1:X", "allocator:L", 0},
		{AllocatorAlivePath("a1"), "allocator-a1:X", "proxy:P", zk.PermRead},
		{AllocatorMaintenancePath("a1"), "allocator-a1:X", "admin:A", zk.PermAll},
		{AllocatorMaintenancePath("a1"), "allocator-a1:X", "allocator-a1:X", zk.PermRead},
		{InstancePath("a1", "i1"), "allocator-a1:X", "constructor:C", zk.PermAll},
		{InstancePath("a1", "i1"), "allocator-a1:X", "allocator-a1:X", zk.PermRead},
		{InstancePath("a1", "i1"), "allocator-a1:X", "proxy:P", 0},
		{StatusPath("a1", "i1"), "allocator-a1:X", "allocator-a1:X", zk.PermAll},
		{PendingPlanPath("d"), "", "constructor:C", zk.PermAll},
		{PendingPlanPath("d"), "", "proxy:P", 0},
		{ReplicationPath("d"), "", "constructor:C", zk.PermAll},
		{ReplicationPath("d"), "", "admin:A", zk.PermRead},
		{ReplicationPath("d"), "", "proxy:P", 0},
		{ReplicationPath("d"), "", "allocator:L", 0},
		{RoutePath("d"), "", "proxy:P", zk.PermRead},
		{RoutePath("d"), "", "admin:A", zk.PermRead},
		{ProxyPath("p"), "", "proxy:P", zk.PermAll},
		{TokenPath("h"), "", "director:D", zk.PermAll},
		{TokenPath("h"), "", "admin:A", 0},
		{PathCA, "", "world:anyone", zk.PermRead},
		{APIKeyPath("k"), "", "constructor:C", 0},
		{PathTrafficFilters, "", "admin:A", zk.PermAll},
		{TrafficFilterPath("f"), "", "admin:A", zk.PermAll},
		{TrafficFilterPath("f"), "", "proxy:P", zk.PermRead},
		{TrafficFilterPath("f"), "", "constructor:C", 0},
		{TrafficFilterPath("f"), "", "allocator:L", 0},
		{TrafficFilterPath("f"), "", "director:D", 0},
		{PathCredentials, "", "admin:A", zk.PermAll},
		{CredentialsPath("d"), "", "admin:A", zk.PermAll},
		{CredentialsPath("d"), "", "constructor:C", zk.PermRead},
		{CredentialsPath("d"), "", "allocator:L", zk.PermRead},
		{CredentialsPath("d"), "", "proxy:P", 0},
		{CredentialsPath("d"), "", "director:D", 0},
	}
	for _, c := range cases {
		t.Run(c.path+"/"+c.role, func(t *testing.T) {
			acl, err := ACLFor(c.path, ids, c.own)
			if err != nil {
				t.Fatal(err)
			}
			var got int32
			for _, a := range acl {
				if a.ID == c.role || a.Scheme+":"+a.ID == c.role {
					got = a.Perms
				}
			}
			if got != c.perms {
				t.Fatalf("perms of %s at %s = %b, want %b (acl %v)", c.role, c.path, got, c.perms, acl)
			}
		})
	}
}

func TestACLForErrors(t *testing.T) {
	ids := Identities{RoleAdmin: "admin:A"}
	if _, err := ACLFor("/elsewhere", ids, ""); err == nil {
		t.Error("path outside /paddock got an ACL")
	}
	if _, err := ACLFor(AllocatorPath("a"), ids, ""); err == nil {
		t.Error("allocator path without the allocator's identity got an ACL")
	}
	if _, err := ACLFor(PathTokens, ids, ""); err == nil {
		t.Error("tokens with no director identity should grant nobody and fail")
	}
}

func TestCredentialDigestMatchesZooKeeper(t *testing.T) {
	c := Credential{User: "admin", Password: "secret"}
	acl := zk.DigestACL(zk.PermAll, c.User, c.Password)
	if acl[0].ID != c.DigestID() {
		t.Fatalf("DigestID %s, go-zookeeper computes %s", c.DigestID(), acl[0].ID)
	}
}

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int
		err  bool
	}{
		{"512m", 512, false}, {"1g", 1024, false}, {"1.5g", 1536, false}, {"4GiB", 4096, false},
		{"2048", 2048, false}, {" 2G ", 2048, false}, {"1t", 1024 * 1024, false}, {"0", 0, false},
		{"", 0, true}, {"abc", 0, true}, {"-1g", 0, true}, {"1x", 0, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseSize(c.in)
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d, err=%v", c.in, got, err, c.want, c.err)
			}
		})
	}
	for mb, s := range map[int]string{512: "512m", 1024: "1g", 1536: "1.5g", 4096: "4g"} {
		if FormatSize(mb) != s {
			t.Errorf("FormatSize(%d) = %s, want %s", mb, FormatSize(mb), s)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512m", "1g", "1.5GiB", "", "x", "9999999999999g"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mb, err := ParseSize(s)
		if err == nil && mb < 0 {
			t.Fatalf("ParseSize(%q) = %d: negative size accepted", s, mb)
		}
	})
}
