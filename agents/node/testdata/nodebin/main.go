// Command nodebin is the node-only binary tests fall back to when the
// whole paddock binary does not build (other parts of the tree being
// changed): its first argument must be "node", as in the images'
// ENTRYPOINT ["/paddock", "node", ...].
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"paddock/agents/node"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "node" {
		fmt.Fprintln(os.Stderr, "usage: nodebin node [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := node.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
