// Package tui is paddock's terminal console (bubbletea): one file per
// screen (overview, allocators, deployments, plans, proxies), the
// overlays opened over them (ZooKeeper, instance logs), the `:` command
// line with completion (command.go), the create-deployment form and
// dialogs, and the App that frames them.
//
// It reads the platform through a data.Source (ZooKeeper watches via
// engine.TreeCache in production, fixtures in tests) and acts through
// the Actions interface, which production wires to the engine's service
// functions — the same ones the API calls. Every action is an op
// (actions.go): the access it needs (checked against Permissions: a
// read-only console, or an API key's role, as the API checks it), a
// confirmation naming what it will do, and the same action as a CLI
// command. It must not write to ZooKeeper itself, nor reach agents.
package tui
