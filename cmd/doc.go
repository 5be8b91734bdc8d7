// Package cmd holds the paddock command line: one file per subcommand,
// wired by root.go. It owns flags, configuration (viper: flags >
// PADDOCK_* environment > ~/.paddock/config.yaml > defaults), logging set-up
// and output formatting; behaviour lives in engine, agents and tui.
package cmd
