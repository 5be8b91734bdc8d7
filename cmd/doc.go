// Package cmd holds the paddock command line: one file per subcommand,
// wired by root.go. It owns flags, configuration (viper: flags >
// PADDOCK_* environment > ~/.paddock/config.yaml > defaults), logging set-up
// and output formatting; behaviour lives in engine, agents and tui.
//
// Adding a verb: an API verb is a cobra.Command whose RunE is
// apiCall[T]{check, call, text, after}.runE(app) (apicall.go); an agent
// command reaches ZooKeeper with app.agentLink (link.go); a usage error
// is usageErr(...), any other error exits 1.
package cmd
