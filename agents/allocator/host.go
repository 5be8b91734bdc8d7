package allocator

import (
	"log/slog"
	"os"
	"strings"
)

// What an allocator takes from the host it runs on when the operator
// does not say: its id and the binary missing node images are built
// from.

// DefaultID is alloc-<hostname>, the host name reduced to what ids
// allow (letters, digits, '-', '_', '.'; anything else becomes '-').
func DefaultID() string {
	host, _ := os.Hostname()
	return "alloc-" + hostPart(host)
}

// hostPart is host reduced to what ids allow ("host" when nothing is
// left).
func hostPart(host string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '-'
	}, host)
	if s == "" {
		return "host"
	}
	return s
}

// SelfIfStatic is this running binary when it is statically linked, so
// it can build node images FROM scratch; otherwise "" (said in the log:
// missing images then fail their instances).
func SelfIfStatic(log *slog.Logger) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if ok, _ := IsStaticBinary(exe); !ok {
		log.Info("this binary is dynamically linked: missing node images will not be built; " + StaticHint)
		return ""
	}
	return exe
}
