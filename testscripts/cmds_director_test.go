package testscripts

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"paddock/engine/freeport"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine/testenv"
)

func init() {
	commands["freeport"] = cmdFreePort
	commands["envfile"] = cmdEnvFile
	commands["echoserver"] = cmdEchoServer
	commands["tcpsend"] = cmdTCPSend
	commands["httpget"] = cmdHTTPGet
}

// echoserver VAR starts a TCP echo server on 127.0.0.1 for the rest of
// the script and sets VAR to its port.
func cmdEchoServer(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: echoserver VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}

// tcpsend ADDR MSG sends MSG and prints what comes back (MSG through an
// echo). It retries for up to 30s until the echo comes (waitfor only runs
// programs); `! tcpsend` waits until ADDR accepts and wants the
// exchange to break after that.
func cmdTCPSend(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: tcpsend ADDR MSG")
	}
	var err error
	testenv.WaitEvery(30*time.Second, 200*time.Millisecond, func() (bool, string) {
		err = tcpSendOnce(ts, args)
		var dialErr *dialError
		// Refused by the peer (not merely unreachable yet) is the
		// answer a negated tcpsend waits for.
		return err == nil || neg && !errors.As(err, &dialErr), ""
	})
	var dialErr *dialError
	switch {
	case neg && err == nil:
		ts.Fatalf("tcpsend %s: echoed, want failure", args[0])
	case err != nil && (!neg || errors.As(err, &dialErr)):
		ts.Fatalf("tcpsend %s: no echo within 30s: %v", args[0], err)
	}
}

func tcpSendOnce(ts *testscript.TestScript, args []string) error {
	return func() error {
		c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
		if err != nil {
			return &dialError{err}
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, args[1]); err != nil {
			return err
		}
		buf := make([]byte, len(args[1]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		ts.Stdout().Write(append(buf, '\n'))
		return nil
	}()
}

// httpget URL [REGEXP] fetches URL and prints the body; with REGEXP it
// retries for up to 30s until the body matches.
func cmdHTTPGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || len(args) > 2 || neg {
		ts.Fatalf("usage: httpget URL [REGEXP]")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	last, ok := testenv.WaitEvery(30*time.Second, 200*time.Millisecond, func() (bool, string) {
		resp, err := c.Get(args[0])
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(args) == 1 || regexp.MustCompile(args[1]).Match(b) {
			ts.Stdout().Write(b)
			return true, ""
		}
		return false, fmt.Sprintf("body does not match %s:\n%s", args[1], b)
	})
	if !ok {
		ts.Fatalf("httpget %s: %s", args[0], last)
	}
}

// freeport VAR... sets each VAR to a free TCP port on 127.0.0.1, outside
// the kernel's ephemeral range: a port picked by listening on :0 could be
// handed to another :0 listener (the director's enrollment endpoint of the
// very `paddock up` under test) before the test's binary binds it.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: freeport VAR...")
	}
	ports, err := freeport.Pick("127.0.0.1", len(args))
	ts.Check(err)
	for i, v := range args {
		ts.Setenv(v, strconv.Itoa(ports[i]))
	}
}

// envfile VAR FILE sets VAR to the first line of FILE (e.g. a token
// printed on stdout: `cp stdout token.txt`).
func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	line, _, _ := strings.Cut(string(b), "\n")
	ts.Setenv(args[0], strings.TrimSpace(line))
}

type dialError struct{ error }
