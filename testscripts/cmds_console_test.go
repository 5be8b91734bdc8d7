package testscripts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine/s3server"
	"paddock/engine/testenv"
)

// Commands of the console and `paddock up` scripts (up_*.txtar,
// console_*.txtar).
// (freeport comes from cmds_director_test.go.)
func init() {
	commands["need"] = cmdNeed
	commands["staticbin"] = cmdStaticBin
	commands["tmux"] = cmdTmux
	commands["downatend"] = cmdDownAtEnd
}

// need docker|tmux|java... fails the script under CI=true when a
// component is missing. Outside CI it only logs: put the built-in
// `[!exec:prog] skip` after it to skip there.
func cmdNeed(ts *testscript.TestScript, neg bool, args []string) {
	for _, what := range args {
		var err error
		switch what {
		case "docker":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").Run()
			cancel()
		case "java":
			_, err = exec.LookPath("java")
		case "weed":
			_, err = s3server.Binary()
		case "python-elasticsearch":
			// Debian's package (scripts/setup.sh installs it), for the
			// system Python whatever python3 is first on PATH.
			err = exec.Command("/usr/bin/python3", "-c", "import elasticsearch, elasticsearch.helpers").Run()
		default:
			_, err = exec.LookPath(what)
		}
		if err != nil {
			if os.Getenv("CI") == "true" {
				ts.Fatalf("%s unavailable under CI: %v", what, err)
			}
			ts.Logf("%s unavailable: %v (the script skips outside CI)", what, err)
		}
	}
}

// staticbin builds the real paddock binary with CGO off (it goes into
// FROM scratch node images) and sets PADDOCK_BIN to it; staticbin DIR
// OUT builds the script's own program in DIR the same way.
func cmdStaticBin(ts *testscript.TestScript, neg bool, args []string) {
	root, err := filepath.Abs("..")
	ts.Check(err)
	out := ts.MkAbs("bin/paddock")
	if len(args) == 2 {
		// staticbin DIR OUT: a program of the script's own (its go.mod in DIR).
		root, out = ts.MkAbs(args[0]), ts.MkAbs(args[1])
	} else if len(args) != 0 {
		ts.Fatalf("usage: staticbin [DIR OUT]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	c.Dir = root
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := c.CombinedOutput(); err != nil {
		ts.Fatalf("build static paddock: %v\n%s", err, b)
	}
	if len(args) == 0 {
		ts.Setenv("PADDOCK_BIN", out)
	}
}

// downatend runs `$PADDOCK_BIN down --purge` when the script ends, pass or
// fail, so no supervisor, ZooKeeper or node container outlives it.
func cmdDownAtEnd(ts *testscript.TestScript, neg bool, args []string) {
	bin := ts.Getenv("PADDOCK_BIN")
	if bin == "" {
		bin = "paddock"
	}
	env := []string{"PADDOCK_HOME=" + ts.Getenv("PADDOCK_HOME"), "HOME=" + ts.Getenv("HOME"), "PATH=" + ts.Getenv("PATH")}
	ts.Defer(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		c := exec.CommandContext(ctx, bin, "down", "--purge")
		c.Env = env
		c.Run()
	})
}

// tmux start NAME COLSxROWS command args... | send NAME keys... |
// type NAME text | wait [-t dur] NAME regexp | grab NAME VAR regexp |
// show NAME | kill NAME
//
// A private tmux server per script (its own socket), so the console
// runs in a real terminal with the script's environment.
func cmdTmux(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: tmux start|send|type|wait|grab|show|kill NAME ...")
	}
	sock := ts.MkAbs("tmux.sock")
	run := func(a ...string) (string, error) {
		c := exec.Command("tmux", append([]string{"-S", sock}, a...)...)
		b, err := c.CombinedOutput()
		return string(b), err
	}
	capture := func(name string) string {
		out, _ := run("capture-pane", "-p", "-t", name)
		return out
	}
	verb, name, rest := args[0], args[1], args[2:]
	switch verb {
	case "start":
		if len(rest) < 2 {
			ts.Fatalf("usage: tmux start NAME COLSxROWS command args...")
		}
		var cols, rows int
		if _, err := fmt.Sscanf(rest[0], "%dx%d", &cols, &rows); err != nil {
			ts.Fatalf("tmux start: size %q: use COLSxROWS", rest[0])
		}
		// The pane's command gets the script's environment explicitly.
		envArgs := []string{"env"}
		for _, k := range []string{"HOME", "PATH", "PADDOCK_HOME", "NO_COLOR", "DOCKER_HOST", "PADDOCK_ZK"} {
			if v := ts.Getenv(k); v != "" {
				envArgs = append(envArgs, k+"="+v)
			}
		}
		envArgs = append(envArgs, "TERM=xterm-256color")
		cmdline := shellJoin(append(envArgs, rest[1:]...)) + "; echo '[exited]' $?; sleep 600"
		out, err := run("new-session", "-d", "-s", name, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), cmdline)
		if err != nil {
			ts.Fatalf("tmux new-session: %v\n%s", err, out)
		}
		ts.Defer(func() {
			// Whatever a pane still runs (a console of a failed script)
			// must not outlive the test.
			procs := paneProcs(run, "-a")
			run("kill-server")
			for _, pid := range waitGone(procs, 10*time.Second) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
	case "send":
		out, err := run(append([]string{"send-keys", "-t", name}, rest...)...)
		if err != nil {
			ts.Fatalf("tmux send-keys: %v\n%s", err, out)
		}
	case "type":
		out, err := run("send-keys", "-t", name, "-l", strings.Join(rest, " "))
		if err != nil {
			ts.Fatalf("tmux send-keys: %v\n%s", err, out)
		}
	case "wait", "grab":
		timeout := 60 * time.Second
		if verb == "wait" && len(rest) > 2 && name == "-t" {
			d, err := time.ParseDuration(rest[0])
			ts.Check(err)
			timeout, name, rest = d, rest[1], rest[2:]
		}
		pat := rest[len(rest)-1]
		re, err := regexp.Compile(pat)
		ts.Check(err)
		if neg {
			timeout = 0 // one look: the screen must not match now
		}
		var screen string
		var m []string
		testenv.WaitEvery(timeout, 100*time.Millisecond, func() (bool, string) {
			screen = capture(name)
			m = re.FindStringSubmatch(screen)
			return m != nil, ""
		})
		switch {
		case m != nil && neg:
			ts.Fatalf("screen matches %q:\n%s", pat, screen)
		case m != nil && verb == "grab":
			if len(m) < 2 {
				ts.Fatalf("tmux grab: %q has no group", pat)
			}
			ts.Setenv(rest[0], m[1])
		case m == nil && !neg:
			ts.Fatalf("screen does not show %q within %s:\n%s", pat, timeout, screen)
		}
	case "show":
		ts.Logf("screen %s:\n%s", name, capture(name))
	case "kill":
		// A killed pane is a terminal that hangs up (an SSH session that
		// drops): what ran in it must exit.
		procs := paneProcs(run, "-t", name)
		run("kill-session", "-t", name)
		if left := waitGone(procs, 10*time.Second); len(left) > 0 {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			ts.Fatalf("tmux kill %s: processes %v still ran 10 s after their terminal hung up", name, left)
		}
	default:
		ts.Fatalf("tmux: unknown verb %q", verb)
	}
}

// paneProcs lists the processes the panes run (list-panes args select
// them): each pane's shell and the shell's children.
func paneProcs(run func(a ...string) (string, error), sel ...string) []int {
	out, err := run(append([]string{"list-panes", "-F", "#{pane_pid}"}, sel...)...)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		pids = append(pids, pid)
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, c := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(c); err == nil {
				pids = append(pids, n)
			}
		}
	}
	return pids
}

// waitGone waits until none of pids runs (zombies count as gone) and
// returns those still running after d.
func waitGone(pids []int, d time.Duration) []int {
	alive := func() []int {
		var left []int
		for _, pid := range pids {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			// state is the field after the command's closing paren.
			if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
				continue
			}
			left = append(left, pid)
		}
		return left
	}
	var left []int
	testenv.WaitEvery(d, 50*time.Millisecond, func() (bool, string) {
		left = alive()
		return len(left) == 0, ""
	})
	return left
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
