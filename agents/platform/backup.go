package platform

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"paddock/agents/agentkit"
	"paddock/agents/director"
	"paddock/engine"
	"paddock/engine/backup"
)

// BackupConfig says how to reach the platform's ZooKeeper as its super
// user: the password `paddock up` keeps in the state dir.
type BackupConfig struct {
	StateDir string
	// ZooKeeper is the connection string; with TLS it is the director's
	// tunnel, dialed with this host's admin certificate.
	ZooKeeper string
	TLS       bool
	// Passphrase encrypts (backup) or decrypts (restore) the director's
	// CA; empty with WithoutCA leaves the CA out.
	Passphrase string
	WithoutCA  bool
	// Force lets a restore replace an existing tree and CA files.
	Force   bool
	Timeout time.Duration
	Logger  *slog.Logger
}

func (c BackupConfig) log() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// superStore connects to ZooKeeper as its super user.
func superStore(ctx context.Context, c BackupConfig) (*engine.Store, error) {
	b, err := os.ReadFile(filepath.Join(c.StateDir, "credentials", "zookeeper-super"))
	if err != nil {
		return nil, fmt.Errorf("ZooKeeper's super-user password (%w): backup and restore run on the host `paddock up` started ZooKeeper from, with its --state-dir", err)
	}
	opts := engine.Options{Servers: c.ZooKeeper, Role: engine.RoleAdmin, ConnectTimeout: c.Timeout, Logger: c.log(),
		Credential: engine.Credential{User: "super", Password: strings.TrimSpace(string(b))}}
	if c.TLS {
		at, err := director.NewAgentTLS(c.StateDir, string(engine.RoleAdmin), nil, c.log())
		if err != nil {
			return nil, fmt.Errorf("the admin certificate for the director's tunnel: %w (or pass --zk-tls=false --zk <ZooKeeper itself>)", err)
		}
		opts.Dialer = at.Dialer()
	}
	return engine.Connect(ctx, opts)
}

// caFiles reads the director's CA files of the state dir (nil when there
// is no CA here).
func caFiles(stateDir string) (map[string][]byte, error) {
	dir := director.CADir(stateDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			out[e.Name()] = b
		}
	}
	return out, nil
}

// Backup writes a consistent copy of the platform's ZooKeeper state to
// w and, unless WithoutCA, the director's CA (key included) encrypted
// with the passphrase.
func Backup(ctx context.Context, c BackupConfig, w io.Writer) (*backup.File, error) {
	var sealed *backup.Sealed
	if !c.WithoutCA {
		files, err := caFiles(c.StateDir)
		if err != nil {
			return nil, fmt.Errorf("read the CA in %s: %w", director.CADir(c.StateDir), err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no CA in %s: pass --without-ca to back up ZooKeeper's state alone", director.CADir(c.StateDir))
		}
		if sealed, err = backup.Seal(files, c.Passphrase); err != nil {
			return nil, err
		}
	}
	s, err := superStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	f, err := backup.Take(ctx, s, backup.Options{})
	if err != nil {
		return nil, err
	}
	f.Secrets = sealed
	return f, f.Write(w)
}

// Restore brings an empty ZooKeeper back to the backup read from r and,
// when the backup holds the CA and a passphrase is given, puts the CA
// back in the state dir (refusing to replace a different one without
// Force). The agents then reconnect: their sessions expire, they
// re-create their ephemerals, and the deployments keep their containers.
func Restore(ctx context.Context, c BackupConfig, r io.Reader) (*backup.File, error) {
	f, err := backup.Read(r)
	if err != nil {
		return nil, err
	}
	var files map[string][]byte
	if f.Secrets != nil && !c.WithoutCA {
		if files, err = f.Secrets.Open(c.Passphrase); err != nil {
			return nil, err
		}
		dir := director.CADir(c.StateDir)
		for name, b := range files {
			if cur, err := os.ReadFile(filepath.Join(dir, name)); err == nil && !bytes.Equal(cur, b) && !c.Force {
				return nil, fmt.Errorf("%s differs from the backup's CA: pass --force to replace it (every certificate of the platform depends on it)", filepath.Join(dir, name))
			}
		}
	}
	s, err := superStore(ctx, c)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if err := backup.Restore(ctx, s, f, backup.RestoreOptions{Force: c.Force, Logger: c.log()}); err != nil {
		return nil, err
	}
	if len(files) > 0 {
		dir := director.CADir(c.StateDir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		for name, b := range files {
			if err := agentkit.WriteFileAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// BackupDir holds the daily backups `paddock up` takes.
func BackupDir(stateDir string) string { return filepath.Join(stateDir, "backups") }

// Daily backups: one a day, the last dailyKeep kept.
const (
	dailyEvery = 24 * time.Hour
	dailyKeep  = 7
)

// dailyBackups takes a backup of ZooKeeper's state (without the CA,
// which stays in the state dir) when the newest is a day old, until ctx
// ends.
func (r *run) dailyBackups(ctx context.Context) {
	dir := BackupDir(r.dir)
	for {
		next := dailyEvery
		if last, ok := newestBackup(dir); ok {
			next = max(0, dailyEvery-time.Since(last))
		} else {
			next = 0
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if err := r.takeDaily(ctx, dir); err != nil && ctx.Err() == nil {
			r.log.Warn("daily backup failed; next try in an hour", "dir", dir, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Hour):
			}
		}
	}
}

func (r *run) takeDaily(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var buf bytes.Buffer
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	f, err := Backup(bctx, BackupConfig{StateDir: r.dir, ZooKeeper: r.zk, WithoutCA: true, Timeout: r.cfg.Timeout, Logger: r.log}, &buf)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "platform-"+time.Now().UTC().Format("20060102-150405")+".backup")
	if err := agentkit.WriteFileAtomic(file, buf.Bytes(), 0o600); err != nil {
		return err
	}
	r.log.Info("daily backup written", "file", file, "znodes", len(f.Znodes))
	pruneBackups(dir, dailyKeep)
	return nil
}

func listBackups(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "platform-*.backup"))
	sort.Strings(m) // the names sort by time
	return m
}

func newestBackup(dir string) (time.Time, bool) {
	m := listBackups(dir)
	if len(m) == 0 {
		return time.Time{}, false
	}
	st, err := os.Stat(m[len(m)-1])
	if err != nil {
		return time.Time{}, false
	}
	return st.ModTime(), true
}

func pruneBackups(dir string, keep int) {
	m := listBackups(dir)
	for i := 0; i < len(m)-keep; i++ {
		_ = os.Remove(m[i])
	}
}

// BackupResult is what `paddock platform backup|restore` reports.
type BackupResult struct {
	File     string    `json:"file"`
	Znodes   int       `json:"znodes"`
	Walks    int       `json:"walks,omitempty"`
	CA       bool      `json:"ca"`
	BackupOf time.Time `json:"backup_of"`
	Seconds  float64   `json:"seconds"`
	restored bool
}

// Text is the result for people.
func (r BackupResult) Text() string {
	took := (time.Duration(r.Seconds * float64(time.Second))).Round(time.Millisecond)
	if r.restored {
		ca := ""
		if r.CA {
			ca = " (and the CA)"
		}
		return fmt.Sprintf("restored %d znodes of the backup of %s in %s%s\n", r.Znodes, r.BackupOf.Format(time.RFC3339), took, ca)
	}
	ca := ""
	if r.CA {
		ca = " and the CA, encrypted,"
	}
	return fmt.Sprintf("%d znodes (a consistent cut in %d walks)%s written to %s in %s\n", r.Znodes, r.Walks, ca, r.File, took)
}

// Passphrase is the CA key's passphrase: the first line of file when
// given, else $PADDOCK_BACKUP_PASSPHRASE.
func Passphrase(file string) (string, error) {
	if file == "" {
		return os.Getenv("PADDOCK_BACKUP_PASSPHRASE"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", agentkit.ConfigErrorf("--passphrase-file: %v", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// BackupToFile writes a backup to path (mode 0600, replaced atomically).
func BackupToFile(ctx context.Context, c BackupConfig, path string) (BackupResult, error) {
	start := time.Now()
	var buf bytes.Buffer
	bf, err := Backup(ctx, c, &buf)
	if err != nil {
		return BackupResult{}, err
	}
	if err := agentkit.WriteFileAtomic(path, buf.Bytes(), 0o600); err != nil {
		return BackupResult{}, err
	}
	return BackupResult{File: path, Znodes: len(bf.Znodes), Walks: bf.Walks, CA: bf.Secrets != nil, BackupOf: bf.CreatedAt,
		Seconds: time.Since(start).Seconds()}, nil
}

// RestoreFromFile restores the backup at path.
func RestoreFromFile(ctx context.Context, c BackupConfig, path string) (BackupResult, error) {
	start := time.Now()
	in, err := os.Open(path)
	if err != nil {
		return BackupResult{}, agentkit.ConfigErrorf("%v", err)
	}
	defer in.Close()
	bf, err := Restore(ctx, c, in)
	if err != nil {
		return BackupResult{}, err
	}
	return BackupResult{File: path, Znodes: len(bf.Znodes), CA: bf.Secrets != nil && !c.WithoutCA, BackupOf: bf.CreatedAt,
		Seconds: time.Since(start).Seconds(), restored: true}, nil
}
