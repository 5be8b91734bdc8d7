package allocator

import "testing"

// TestDefaultID: whatever the host is called, the default id is one the
// allocator accepts.
func TestDefaultID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ host, want string }{
		{"db-1.example.org", "alloc-db-1.example.org"},
		{"my host", "alloc-my-host"},
		{"höst", "alloc-h-st"},
		{"", "alloc-host"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			id := "alloc-" + hostPart(tc.host)
			if id != tc.want || !idPattern.MatchString(id) {
				t.Errorf("id of host %q = %q, want %q (valid: %v)", tc.host, id, tc.want, idPattern.MatchString(id))
			}
		})
	}
	if id := DefaultID(); !idPattern.MatchString(id) {
		t.Errorf("DefaultID() = %q is not a valid id", id)
	}
}
