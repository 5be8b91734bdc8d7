// Command paddock is the one binary of the paddock platform: every agent,
// the console and the admin CLI.
package main

import (
	"os"

	"paddock/cmd"
)

func main() { os.Exit(cmd.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
