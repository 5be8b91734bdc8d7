// Package agents is the parent of paddock's headless long-running agents:
// allocator, constructor, director, proxy, api and node, one package each.
// Agents depend on engine (state store, model, services) and never on tui
// or main; each exposes a Config and a Run(ctx, cfg) that returns when ctx
// ends, so `paddock up` can run them in-process and the CLI on their own.
package agents
