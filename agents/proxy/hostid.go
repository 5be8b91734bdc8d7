package proxy

import (
	"errors"
	"strings"
)

// HeaderCluster names the deployment when the host name does not.
const HeaderCluster = "X-Found-Cluster"

// Target is what a request asks for: a deployment and an instance kind.
type Target struct {
	ID   string
	Kind string // engine.KindElasticsearch or engine.KindKibana
}

// Errors of ParseTarget; the handler turns them into 400 answers.
var (
	errNoID     = errors.New("no deployment id")
	errBadID    = errors.New("malformed deployment id")
	errBadHost  = errors.New("malformed host name")
	errNotOurs  = errors.New("host name is not under the proxy's domain")
	maxIDLength = 64
)

// ParseTarget finds the deployment a request is for. The X-Found-Cluster
// header wins over the host name (as Elastic's proxies do); the host is
// <id>.<domain> for Elasticsearch or <id>.kb.<domain> for Kibana, with
// an optional :port. Ids are lowercase letters, digits and '-' (paddock
// mints 32 hex characters); upper case in host names is folded. It does
// not allocate for a well-formed lowercase host.
func ParseTarget(host, header, domain string) (Target, error) {
	if header != "" {
		id := strings.TrimSpace(header)
		if !validID(id) {
			return Target{}, errBadID
		}
		return Target{ID: id, Kind: kindES}, nil
	}
	if host == "" {
		return Target{}, errNoID
	}
	h, err := stripPort(host)
	if err != nil {
		return Target{}, err
	}
	if !lowerASCII(h) {
		h = strings.ToLower(h)
	}
	h = strings.TrimSuffix(h, ".") // fully qualified form
	if len(h) <= len(domain)+1 || h[len(h)-len(domain)-1] != '.' || h[len(h)-len(domain):] != domain {
		if validHost(h) {
			return Target{}, errNotOurs
		}
		return Target{}, errBadHost
	}
	sub := h[:len(h)-len(domain)-1]
	kind := kindES
	if s, ok := strings.CutSuffix(sub, ".kb"); ok {
		sub, kind = s, kindKB
	}
	if !validID(sub) {
		if validHost(sub) {
			return Target{}, errBadID
		}
		return Target{}, errBadHost
	}
	return Target{ID: sub, Kind: kind}, nil
}

func stripPort(host string) (string, error) {
	if strings.HasPrefix(host, "[") {
		return "", errNotOurs // IP literal: no id in it
	}
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return host, nil
	}
	port := host[i+1:]
	if len(port) > 5 {
		return "", errBadHost
	}
	for j := 0; j < len(port); j++ {
		if port[j] < '0' || port[j] > '9' {
			return "", errBadHost
		}
	}
	return host[:i], nil
}

func lowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return false
		}
	}
	return true
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLength || id[0] == '-' || id[len(id)-1] == '-' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// validHost accepts DNS names (letters, digits, '-', '.') of sane length.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
