package testscripts

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/cmd"
	"paddock/engine/s3server"
)

// commands holds the custom script commands, added by cmds_*.go files.
var commands = map[string]func(ts *testscript.TestScript, neg bool, args []string){}

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"paddock": func() { os.Exit(cmd.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		Cmds:                commands,
		RequireExplicitExec: false,
		UpdateScripts:       os.Getenv("UPDATE_SCRIPTS") == "1",
		// [weed]: SeaweedFS's weed is installed (scripts/setup.sh).
		Condition: func(cond string) (bool, error) {
			if cond == "weed" {
				_, err := s3server.Binary()
				return err == nil, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Deadline: time.Now().Add(20 * time.Minute),
		Setup: func(env *testscript.Env) error {
			// Each script gets its own state dir and no inherited config.
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("PADDOCK_HOME", env.WorkDir+"/.paddock")
			env.Setenv("NO_COLOR", "1")
			for _, k := range []string{"CI", "DOCKER_HOST", "PATH"} {
				if v, ok := os.LookupEnv(k); ok {
					env.Setenv(k, v)
				}
			}
			env.Setenv("PADDOCK_TEST_NAME", env.WorkDir)
			// HOME moves: the tools scripts/setup.sh built (weed) stay
			// where they are.
			if bin, err := s3server.Binary(); err == nil && os.Getenv("PADDOCK_TOOLS") == "" {
				env.Setenv("PADDOCK_TOOLS", filepath.Dir(bin))
			}
			return nil
		},
	})
}
