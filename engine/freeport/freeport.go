// Package freeport picks TCP ports that are free now and that the kernel
// will not hand out on its own later.
//
// The usual trick, listening on port 0 and closing, returns a port from the
// kernel's ephemeral range (net.ipv4.ip_local_port_range). Between the close
// and the moment the caller binds it, any other socket on the host that
// listens on port 0 or dials out can be given the same number, and the
// caller's bind then fails with "address already in use". That happened in
// CI: a `paddock up` under test got, for its director's enrollment endpoint
// (listening on :0), the port picked a moment earlier for its own API.
//
// Pick chooses at random below the ephemeral range instead, where the kernel
// never assigns a port by itself, and checks each one by binding it. Two
// callers that pick at the same moment can still choose the same port (one
// chance in about twenty thousand per pair); one process never returns a port
// twice.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The ports Pick chooses from when the ephemeral range cannot be read or
// leaves too little room below it.
const (
	low         = 10000
	defaultHigh = 32767 // Linux's default ephemeral range starts at 32768
	minSpan     = 2000
)

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// Pick returns n distinct ports on ip that were free when checked and lie
// outside the kernel's ephemeral range. Bind them soon: nothing holds them.
func Pick(ip string, n int) ([]int, error) {
	high := ephemeralStart() - 1
	if high-low < minSpan {
		high = defaultHigh
	}
	mu.Lock()
	defer mu.Unlock()
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 200*n {
			return nil, fmt.Errorf("find %d free ports on %s between %d and %d: only %d free after %d tries", n, ip, low, high, len(out), tries)
		}
		p := low + rand.IntN(high-low+1)
		if used[p] || !free(ip, p) {
			continue
		}
		used[p] = true
		out = append(out, p)
	}
	return out, nil
}

// One returns a single port as Pick does.
func One(ip string) (int, error) {
	p, err := Pick(ip, 1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func free(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralStart reads the first port of the kernel's ephemeral range, or
// Linux's default when it cannot.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultHigh + 1
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return defaultHigh + 1
	}
	p, err := strconv.Atoi(f[0])
	if err != nil || p <= low {
		return defaultHigh + 1
	}
	return p
}
