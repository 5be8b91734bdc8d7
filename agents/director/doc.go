// Package director is the platform's security agent (`paddock director`):
//
//   - the certificate authority: a root CA created on first start (key on
//     the director host's disk, mode 0600, never in ZooKeeper; the
//     certificate published at /paddock/security/ca), signing CSRs of
//     internal clients with short-lived certificates that carry the role
//     and id (URI SAN paddock://role/<role>/<id>, OU/CN), and renewing
//     them before expiry;
//   - roles tokens (/paddock/security/tokens/<sha256>): created, listed
//     and revoked by `paddock token`, each pinning the CA by fingerprint so
//     a new host trusts the director with no other file;
//   - the enrollment endpoint (HTTPS, 12343): a host joins with a token,
//     its CSR and the roles it asks for, and gets one certificate per role
//     and its roles' ZooKeeper digest credentials (Join is the client
//     side, shared by every agent's --join flag);
//   - the mTLS tunnel in front of ZooKeeper (2191, package stunnel), and
//     the dialer agents put under their ZooKeeper connection
//     (ZooKeeperDialer).
//
// It writes only /paddock/security/** (its ACL row) and its own files
// under the state dir (director/, tls/, credentials/ when joining); it must
// not touch other agents' znodes or files.
package director
