package testscripts

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"paddock/engine/testenv"
)

func init() {
	commands["ctor-httpok"] = cmdHTTPOK
	commands["ctor-metric"] = cmdMetric
}

func httpGet(url string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return resp.StatusCode, b.String(), sc.Err()
}

// waitArgs strips a leading "-t DURATION" (default: check once).
func waitArgs(ts *testscript.TestScript, args []string) (time.Duration, []string) {
	if len(args) > 2 && args[0] == "-t" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		return d, args[2:]
	}
	return 0, args
}

// eventually retries check until it holds or the timeout passes; it
// returns the last failure.
func eventually(timeout time.Duration, check func() error) error {
	var err error
	testenv.WaitEvery(timeout, 200*time.Millisecond, func() (bool, string) {
		err = check()
		return err == nil, ""
	})
	return err
}

// ctor-httpok [-t DUR] URL: GET URL answers 2xx (within DUR).
func cmdHTTPOK(ts *testscript.TestScript, neg bool, args []string) {
	timeout, args := waitArgs(ts, args)
	if len(args) != 1 {
		ts.Fatalf("usage: ctor-httpok [-t dur] URL")
	}
	err := eventually(timeout, func() error {
		code, _, err := httpGet(args[0])
		ok := err == nil && code/100 == 2
		if ok == neg {
			return fmt.Errorf("GET %s: status %d, err %v", args[0], code, err)
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
}

// ctor-metric [-t DUR] URL NAME VALUE: the sum of every sample of metric
// NAME (any labels; absent counts 0) at the Prometheus endpoint URL
// equals VALUE (within DUR).
func cmdMetric(ts *testscript.TestScript, neg bool, args []string) {
	timeout, args := waitArgs(ts, args)
	if len(args) != 3 {
		ts.Fatalf("usage: ctor-metric [-t dur] URL NAME VALUE")
	}
	want, err := strconv.ParseFloat(args[2], 64)
	ts.Check(err)
	if err := eventually(timeout, func() error { return checkMetric(args[0], args[1], want, neg) }); err != nil {
		ts.Fatalf("%v", err)
	}
}

func checkMetric(url, metric string, want float64, neg bool) error {
	code, body, err := httpGet(url)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("GET %s: status %d, err %v", url, code, err)
	}
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = strings.TrimSpace(line[j+1:])
			}
		}
		if name != metric {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return fmt.Errorf("metric %s: %v", metric, err)
		}
		sum += v
	}
	if (sum == want) == neg {
		return fmt.Errorf("metric %s = %v, want %s%v", metric, sum, map[bool]string{true: "not ", false: ""}[neg], want)
	}
	return nil
}
