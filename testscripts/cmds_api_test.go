package testscripts

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() {
	commands["jsonget"] = cmdJSONGet
	commands["dockercleanup"] = cmdDockerCleanup
}

// dockercleanup LABEL=VALUE removes, when the script ends (pass or
// fail), every Docker container, volume and network carrying that label, so no
// node outlives a script that runs allocators itself.
func cmdDockerCleanup(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || !strings.Contains(args[0], "=") {
		ts.Fatalf("usage: dockercleanup LABEL=VALUE")
	}
	filter := "label=" + args[0]
	ts.Defer(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "docker", "ps", "-aq", "--filter", filter).Output(); err == nil {
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				_ = exec.CommandContext(ctx, "docker", append([]string{"rm", "-f", "-v"}, ids...)...).Run()
			}
		}
		if out, err := exec.CommandContext(ctx, "docker", "volume", "ls", "-q", "--filter", filter).Output(); err == nil {
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				_ = exec.CommandContext(ctx, "docker", append([]string{"volume", "rm", "-f"}, ids...)...).Run()
			}
		}
		if out, err := exec.CommandContext(ctx, "docker", "network", "ls", "-q", "--filter", filter).Output(); err == nil {
			if ids := strings.Fields(string(out)); len(ids) > 0 {
				_ = exec.CommandContext(ctx, "docker", append([]string{"network", "rm"}, ids...)...).Run()
			}
		}
		// Images a script built into a repository of its own
		// (paddock-test/…); the shared paddock/node images stay.
		if out, err := exec.CommandContext(ctx, "docker", "images", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "label=paddock.image."+args[0]).Output(); err == nil {
			for _, ref := range strings.Fields(string(out)) {
				if strings.HasPrefix(ref, "paddock-test/") {
					_ = exec.CommandContext(ctx, "docker", "rmi", "-f", ref).Run()
				}
			}
		}
	})
}

// jsonget FILE PATH [VAR | == VALUE] reads the JSON document in FILE (e.g. `cp
// stdout out.json`), follows PATH (dot-separated keys and array indexes,
// such as deployment.id or allocators.0.maintenance; "." is the whole
// document; "#" after an array gives its length) and sets VAR to the
// value (strings bare, the rest as JSON), or asserts it equals VALUE
// (same rendering). Without either it prints the
// value to the script log. With ! it asserts the path is absent. The
// file must hold exactly one JSON value: `-o json` prints nothing else.
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || len(args) > 4 || (len(args) == 4 && args[2] != "==") {
		ts.Fatalf("usage: jsonget FILE PATH [VAR | == VALUE]")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	var doc any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&doc); err != nil {
		ts.Fatalf("%s is not JSON: %v\n%s", args[0], err, b)
	}
	if dec.More() {
		ts.Fatalf("%s holds more than one JSON value", args[0])
	}
	v, ok := jsonPath(doc, args[1])
	if neg {
		if ok {
			ts.Fatalf("%s: %s is present: %v", args[0], args[1], v)
		}
		return
	}
	if !ok {
		ts.Fatalf("%s: no %s in %s", args[0], args[1], b)
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	default:
		out, _ := json.Marshal(x)
		s = string(out)
	}
	if len(args) == 4 {
		if s != args[3] {
			ts.Fatalf("%s: %s is %s, want %s", args[0], args[1], s, args[3])
		}
	} else if len(args) == 3 {
		ts.Setenv(args[2], s)
	} else {
		ts.Logf("%s = %s", args[1], s)
	}
}

func jsonPath(doc any, path string) (any, bool) {
	if path == "." {
		return doc, true
	}
	cur := doc
	for _, k := range strings.Split(path, ".") {
		switch x := cur.(type) {
		case map[string]any:
			v, ok := x[k]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			if k == "#" {
				cur = float64(len(x))
				continue
			}
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			cur = x[i]
		default:
			return nil, false
		}
	}
	return cur, true
}
