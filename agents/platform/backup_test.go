package platform

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"paddock/agents/director"
	"paddock/engine"
	"paddock/engine/zktest"
)

// TestBackupRestoreWithCA, on real ZooKeeper: the platform's state and
// the director's CA (encrypted) go into one file; after ZooKeeper's data
// and the CA are lost, restore brings both back; a wrong passphrase and
// a missing one are refused, and a restore over a live platform needs
// --force.
func TestBackupRestoreWithCA(t *testing.T) {
	env, err := zktest.Start(1)
	if err != nil {
		t.Fatalf("ZooKeeper for the test: %v", err)
	}
	defer env.Stop()
	p := env.Fresh(t, "zone-1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "credentials"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "credentials", "zookeeper-super"), []byte(env.SuperPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caDir := director.CADir(dir)
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(caDir, "ca.key"), []byte("the CA's private key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Admin.Put(ctx, engine.DeploymentPath("d1"), engine.Deployment{ID: "d1", Name: "kept"}); err != nil {
		t.Fatal(err)
	}
	cfg := BackupConfig{StateDir: dir, ZooKeeper: env.Servers(), Timeout: 10 * time.Second}

	if _, err := Backup(ctx, cfg, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("backup of the CA without a passphrase: %v", err)
	}
	cfg.Passphrase = "correct horse"
	path := filepath.Join(t.TempDir(), "platform.backup")
	res, err := BackupToFile(ctx, cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CA || bytes.Contains(raw, []byte("the CA's private key")) {
		t.Fatal("the CA is missing from the backup, or in clear")
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("backup file mode %v, want 0600", st.Mode().Perm())
	}
	if !strings.Contains(res.Text(), "written to "+path) {
		t.Fatalf("backup text: %q", res.Text())
	}

	if _, err := Restore(ctx, cfg, bytes.NewReader(raw)); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a live platform: %v", err)
	}
	// ZooKeeper's data and the CA are lost.
	su := env.Super(t)
	if err := su.DeleteTree(ctx, engine.Root); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(caDir); err != nil {
		t.Fatal(err)
	}
	bad := cfg
	bad.Passphrase = "wrong"
	if _, err := Restore(ctx, bad, bytes.NewReader(raw)); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("restore with a wrong passphrase: %v", err)
	}
	if _, err := RestoreFromFile(ctx, cfg, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("restore of a missing file")
	}
	rres, err := RestoreFromFile(ctx, cfg, path)
	if err != nil {
		t.Fatal(err)
	}
	if !rres.CA || !strings.Contains(rres.Text(), "(and the CA)") {
		t.Fatalf("restore result %+v: %q", rres, rres.Text())
	}
	var d engine.Deployment
	if _, err := p.Admin.GetJSON(ctx, engine.DeploymentPath("d1"), &d); err != nil || d.Name != "kept" {
		t.Fatalf("deployment after the restore: %+v %v", d, err)
	}
	if b, err := os.ReadFile(filepath.Join(caDir, "ca.key")); err != nil || string(b) != "the CA's private key" {
		t.Fatalf("CA key after the restore: %q %v", b, err)
	}
}

func TestPruneBackups(t *testing.T) {
	dir := t.TempDir()
	for i := range 10 {
		name := filepath.Join(dir, "platform-2026120"+string(rune('0'+i%10))+"-000000.backup")
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pruneBackups(dir, dailyKeep)
	left := listBackups(dir)
	if len(left) != dailyKeep || !strings.HasSuffix(left[len(left)-1], "20261209-000000.backup") {
		t.Fatalf("kept %v", left)
	}
}

func TestPassphrase(t *testing.T) {
	t.Setenv("PADDOCK_BACKUP_PASSPHRASE", "from env")
	if p, err := Passphrase(""); err != nil || p != "from env" {
		t.Fatalf("from the environment: %q %v", p, err)
	}
	f := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(f, []byte("from file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if p, err := Passphrase(f); err != nil || p != "from file" {
		t.Fatalf("from a file: %q %v", p, err)
	}
	if _, err := Passphrase(f + ".missing"); err == nil {
		t.Fatal("a missing passphrase file was accepted")
	}
}
