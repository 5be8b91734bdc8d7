package stunnel

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"time"
)

// ProbeResult is one check of Probe.
type ProbeResult struct {
	Check  string `json:"check"`
	Target string `json:"target"`
	// Reached: TCP connected / TLS admitted a client without certificate
	// / file exists.
	Reached bool   `json:"reached"`
	Detail  string `json:"detail,omitempty"`
}

// Probe reports what this place can reach: plain TCP connects, TLS
// tunnels entered without a client certificate, files present (`paddock
// tunnel probe`, run inside node containers by the isolation tests).
func Probe(tcp, tlsAddrs, files []string) []ProbeResult {
	var out []ProbeResult
	for _, a := range tcp {
		r := ProbeResult{Check: "tcp", Target: a}
		if c, err := net.DialTimeout("tcp", a, 3*time.Second); err == nil {
			r.Reached = true
			c.Close()
		} else {
			r.Detail = err.Error()
		}
		out = append(out, r)
	}
	for _, a := range tlsAddrs {
		r := ProbeResult{Check: "tls-without-certificate", Target: a}
		r.Reached, r.Detail = probeTLS(a)
		out = append(out, r)
	}
	for _, f := range files {
		r := ProbeResult{Check: "file", Target: f}
		if _, err := os.Stat(f); err == nil {
			r.Reached = true
		} else {
			r.Detail = err.Error()
		}
		out = append(out, r)
	}
	return out
}

// probeTLS enters a tunnel without a client certificate: admitted when
// the handshake completes and the connection stays open (a refused
// client gets an alert or a close on its first read).
func probeTLS(addr string) (bool, string) {
	raw, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return false, err.Error()
	}
	defer raw.Close()
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // probing refusal, not the server
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if err := c.Handshake(); err != nil {
		return false, err.Error()
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return true, "handshake completed and the connection stayed open"
	}
	return false, err.Error()
}

// IssueFiles issues a certificate for leaf from ca with a new key and
// writes <base>.crt and <base>.key (0600).
func IssueFiles(ca *CA, leaf Leaf, base string) error {
	key, keyPEM, err := GenerateKey()
	if err != nil {
		return err
	}
	certPEM, err := ca.Issue(key.Public(), leaf)
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".key", keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(base+".crt", certPEM, 0o644)
}
