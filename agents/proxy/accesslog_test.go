package proxy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAccessLineIsJSON(t *testing.T) {
	cases := []struct {
		name, path, err string
	}{
		{"plain", "/_search", ""},
		{"quotes and controls", "/a\"b\\c\n\x01", "boom \"quoted\""},
		{"invalid utf-8", "/\xff\xfe", ""},
		{"unicode", "/caf\u00e9/\u65e5\u672c", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var st stamp
			line := accessLine(nil, &st, time.Now(), "p1", outcome{code: 200, id: testID, upstream: "127.0.0.1:1", attempts: 1, err: c.err}, 1500*time.Microsecond, "GET", c.path, "127.0.0.1:5555")
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			if ts, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil || time.Since(ts) > time.Minute {
				t.Fatalf("time %v: %v", m["time"], err)
			}
			if m["duration_us"].(float64) != 1500 || m["status"].(float64) != 200 || m["msg"] != "request" {
				t.Fatalf("fields %v", m)
			}
			if c.err != "" && m["error"] != c.err {
				t.Fatalf("error field %v", m["error"])
			}
		})
	}
}

func BenchmarkAccessLogToFile(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := NewBufferedWriter(f, 200*time.Millisecond)
	defer w.Close()
	var buf []byte
	var st stamp
	o := outcome{code: 200, id: testID, upstream: "127.0.0.1:9200", attempts: 1}
	b.ReportAllocs()
	for b.Loop() {
		buf = accessLine(buf[:0], &st, time.Now(), "proxy-1", o, 800*time.Microsecond, "GET", "/_search", "127.0.0.1:40000")
		w.Write(buf)
	}
}
