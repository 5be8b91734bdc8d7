// Package stunnel is paddock's TLS tunnel, in the two modes of stunnel:
//
//   - server mode accepts mutual-TLS connections and forwards the plain
//     bytes to a target chosen per connection (Server);
//   - client mode accepts plain local connections and forwards them over
//     mutual TLS to a remote server (Client), or hands an mTLS net.Conn to
//     a library such as go-zookeeper (Dialer).
//
// Mutual TLS is always on, TLS 1.3 is preferred (TLS 1.2 accepted for
// stunnel interop). Peers are admitted by the identity in their
// certificate: the URI SAN paddock://role/<role>/<id>, or else the
// subject's OU (role) and CN (id); see Identity and Allow.
//
// Certificates, keys, the CA bundle and the revocation list are read from
// files by a Loader and reloaded on SIGHUP and on a timer; a reload that
// fails keeps the previous material and is reported on the status
// endpoint. Live connections are never dropped by a reload: only new
// handshakes see the new material.
//
// Embedding. Server.Serve(ctx, listener) and Client.DialSNI /
// Client.ReloadingTLSConfig are the embeddable ends. A server that fronts
// several plain backends (an allocator in front of its node containers
// on :9400, admitting only proxy certificates) routes by SNI: the client
// sends BackendSNI(instanceID) = "<instance>.node.paddock" (a host name,
// so it is sent even when the tunnel address is an IP) and the server's
// Target is SNIRouter(lookup), lookup mapping the instance id to the
// node's loopback or container-network address. A connection naming no
// known backend is closed after the handshake.
//
// The package also holds the small PKI used by the director (NewCA,
// Issue) and the stunnel.conf renderer for hosts that prefer running
// stunnel itself (RenderConf).
//
// It owns TLS tunnelling only and depends on nothing else of paddock's:
// it must not import engine, agents or cmd.
package stunnel
