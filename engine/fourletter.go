package engine

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// ServerList is the store's connection string, one host:port each.
func (s *Store) ServerList() []string { return splitServers(s.opts.Servers) }

// FourLetter sends a ZooKeeper four-letter word (srvr, mntr, ruok) to
// server, through the store's dialer (the director's tunnel) when it has
// one, and returns the answer. The word must be in the server's
// 4lw.commands.whitelist.
func (s *Store) FourLetter(ctx context.Context, server, word string) (string, error) {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	var conn net.Conn
	var err error
	if s.opts.Dialer != nil {
		conn, err = s.opts.Dialer("tcp", server, timeout)
	} else {
		conn, err = net.DialTimeout("tcp", server, timeout)
	}
	if err != nil {
		return "", fmt.Errorf("ZooKeeper server %s: %w", server, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte(word)); err != nil {
		return "", fmt.Errorf("ZooKeeper server %s: %s: %w", server, word, err)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, rerr := conn.Read(buf)
		b.Write(buf[:n])
		if rerr != nil {
			break
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("ZooKeeper server %s answered nothing to %s (is it in 4lw.commands.whitelist?)", server, word)
	}
	return b.String(), nil
}
