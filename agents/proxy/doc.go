// Package proxy is paddock's client-facing router: it takes every client
// request on 9200 (HTTP) and 9243 (HTTPS), finds the deployment by host
// name (<id>.<domain>, <id>.kb.<domain> for Kibana) or the
// X-Found-Cluster header, and forwards it to one of the deployment's
// healthy nodes over keep-alive connection pools.
//
// It owns: the routing table (built from the store's TreeCache of
// /paddock/routes and the allocators' alive nodes, swapped atomically),
// its copy on local disk (so a proxy started while ZooKeeper is down
// serves), passive health and probes, least-outstanding load balancing,
// holding requests of paused routes and draining replaced backends, its
// registration under /paddock/proxies/<id>, its metrics and access log.
// Backends marked tls are allocator node tunnels (:9400): the proxy dials
// them with mutual TLS (Config.BackendLoader: its proxy-role
// certificate, reloaded in place; the server must be an allocator of the
// platform CA), sending stunnel.BackendSNI(instance id), one keep-alive
// pool per (tunnel address, instance).
//
// Front ends: the plain listener is served by epoll event loops (one
// per GOMAXPROCS, loop_linux.go), which hand the requests they leave
// (HTTP/1.0, Expect, chunked request bodies, paused routes, oversized
// heads) with their connection to the goroutine-per-connection server
// (server.go); the HTTPS listener is that server. Both share the
// parser, the route resolution and the forwarding code.
//
// It only reads the control plane: it must never write routes,
// deployments or allocator state, and it must not import tui, cmd or
// other agents.
package proxy
