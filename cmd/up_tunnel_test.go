package cmd

import "testing"

func TestLoopbackAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{":2191", "127.0.0.1:2191"},
		{"[::]:2191", "127.0.0.1:2191"},
		{"0.0.0.0:2191", "127.0.0.1:2191"},
		{"127.0.0.1:40000", "127.0.0.1:40000"},
		{"10.1.2.3:2191", "10.1.2.3:2191"},
		{"[::1]:2191", "[::1]:2191"},
		{"director.example:2191", "director.example:2191"},
		{"no-port", "no-port"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := loopbackAddr(tc.in); got != tc.want {
				t.Errorf("loopbackAddr(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
