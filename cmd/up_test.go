package cmd

import (
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/spf13/viper"

	"paddock/agents/platform"
)

// TestUpArgsRoundTrip: the detached supervisor gets the operator's
// configuration back: Config.Args parsed by up's flags is the same
// Config.
func TestUpArgsRoundTrip(t *testing.T) {
	t.Setenv("PADDOCK_HOME", t.TempDir())
	want := platform.Defaults()
	want.StateDir = t.TempDir()
	want.Zones, want.AllocatorsPerZone, want.AllocatorMemoryMB = 2, 3, 1536
	want.ZKPort, want.APIPort, want.ProxyPort = 0, 12401, 0
	want.DirectorTunnelAddr, want.DirectorEnrollAddr = "127.0.0.1:0", "-"
	want.CertTTL, want.StartTimeout, want.Timeout = time.Hour, 90*time.Second, 7*time.Second
	want.Runtime, want.Labels = "sim", map[string]string{"paddock.test": "x", "b": "2"}
	want.Version = Version

	app := &App{V: viper.New(), In: nil, Out: io.Discard, Err: io.Discard}
	root := NewRoot(app)
	args := want.Args("warn")
	c, rest, err := root.Find(args)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ParseFlags(rest); err != nil {
		t.Fatal(err)
	}
	if err := app.init(c); err != nil {
		t.Fatal(err)
	}
	got, err := upConfig(app)
	if err != nil {
		t.Fatal(err)
	}
	if !app.V.GetBool("headless") || app.V.GetString("log-level") != "warn" {
		t.Errorf("headless %v, log level %q", app.V.GetBool("headless"), app.V.GetString("log-level"))
	}
	got.Binary, got.Logger = "", nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
}
