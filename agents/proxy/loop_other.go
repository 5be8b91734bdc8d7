//go:build !linux

package proxy

import (
	"context"
	"errors"
	"net"
)

// The event-loop front end is Linux only (epoll); elsewhere the plain
// listener is served by the goroutine-per-connection server.
type loopServer struct{}

func newLoopServer(*Proxy, net.Listener, int, *server) (*loopServer, error) {
	return nil, errors.New("the event-loop front end needs Linux")
}

func (*loopServer) serve() error             { return nil }
func (*loopServer) shutdown(context.Context) {}
