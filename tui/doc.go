// Package tui is paddock's terminal console (bubbletea): one file per
// screen (overview, allocators, deployments, plans, proxies), the
// create-deployment form and dialogs, and the App that frames them.
//
// It reads the platform through a data.Source (ZooKeeper watches via
// engine.TreeCache in production, fixtures in tests) and acts through
// the Actions interface, which production wires to the engine's service
// functions — the same ones the API calls. It must not write to
// ZooKeeper itself, nor reach agents.
package tui
