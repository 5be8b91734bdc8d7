// Package cmd holds the paddock command line: one file per subcommand,
// wired by root.go. It owns flags and configuration (viper: flags >
// PADDOCK_* environment > ~/.paddock/config.yaml > defaults), logging
// set-up and exit codes; behaviour, and the text form of what commands
// print, live in engine, agents and tui (the API's answers in
// agents/api/client's Write… functions).
//
// Adding a verb: an API verb is a cobra.Command whose RunE is
// apiCall[T]{check, call, text, after}.runE(app) (apicall.go); an agent
// command reaches ZooKeeper with app.agentLink (link.go, over
// director.HostLink); a usage error is usageErr(...) or an
// *agentkit.ConfigError from a package, any other error exits 1.
package cmd
