package backup

import (
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"paddock/engine"
)

// Format names the file format.
const Format = "paddock-backup/1"

// File is a backup.
type File struct {
	Format    string    `json:"format"`
	CreatedAt time.Time `json:"created_at"`
	Root      string    `json:"root"`
	// Walks is how many walks the consistent cut took.
	Walks int `json:"walks"`
	// Zxid is the highest transaction id the platform's clients may have
	// seen when the backup was taken (the servers' srvr, else the
	// highest of the znodes): a restored server must pass it before
	// they can reconnect.
	Zxid   int64   `json:"zxid"`
	Znodes []Znode `json:"znodes"`
	// Secrets are the caller's files, encrypted (nil: none).
	Secrets *Sealed `json:"secrets,omitempty"`
}

// Znode is one znode: path, data and ACL.
type Znode struct {
	Path string   `json:"path"`
	Data []byte   `json:"data,omitempty"`
	ACL  []zk.ACL `json:"acl"`
}

// Sealed is data encrypted with a passphrase.
type Sealed struct {
	KDF        string `json:"kdf"`
	Iterations int    `json:"iterations"`
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// kdfIterations is PBKDF2's work factor (OWASP's 2023 figure for SHA-256).
const kdfIterations = 600000

// Seal encrypts the secrets (name → content) with passphrase.
func Seal(secrets map[string][]byte, passphrase string) (*Sealed, error) {
	if passphrase == "" {
		return nil, errors.New("no passphrase: the CA key is only written encrypted (--passphrase-file or PADDOCK_BACKUP_PASSPHRASE)")
	}
	plain, err := json.Marshal(secrets)
	if err != nil {
		return nil, err
	}
	s := &Sealed{KDF: "pbkdf2-sha256", Iterations: kdfIterations, Salt: make([]byte, 16)}
	if _, err := rand.Read(s.Salt); err != nil {
		return nil, err
	}
	gcm, err := aead(passphrase, s)
	if err != nil {
		return nil, err
	}
	s.Nonce = make([]byte, gcm.NonceSize())
	if _, err := rand.Read(s.Nonce); err != nil {
		return nil, err
	}
	s.Ciphertext = gcm.Seal(nil, s.Nonce, plain, []byte(Format))
	return s, nil
}

// Open decrypts sealed secrets.
func (s *Sealed) Open(passphrase string) (map[string][]byte, error) {
	gcm, err := aead(passphrase, s)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, s.Nonce, s.Ciphertext, []byte(Format))
	if err != nil {
		return nil, errors.New("cannot decrypt the backup's secrets: wrong passphrase, or the file is damaged")
	}
	var out map[string][]byte
	if err := json.Unmarshal(plain, &out); err != nil {
		return nil, fmt.Errorf("the backup's secrets: %w", err)
	}
	return out, nil
}

func aead(passphrase string, s *Sealed) (cipher.AEAD, error) {
	if s.KDF != "pbkdf2-sha256" || s.Iterations < 1 {
		return nil, fmt.Errorf("unknown key derivation %q (%d iterations)", s.KDF, s.Iterations)
	}
	key, err := pbkdf2.Key(sha256.New, passphrase, s.Salt, s.Iterations, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Write writes f gzip-compressed.
func (f *File) Write(w io.Writer) error {
	zw := gzip.NewWriter(w)
	if err := json.NewEncoder(zw).Encode(f); err != nil {
		return err
	}
	return zw.Close()
}

// Read reads a backup written by Write.
func Read(r io.Reader) (*File, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a paddock backup (gzip: %w)", err)
	}
	defer zr.Close()
	var f File
	if err := json.NewDecoder(zr).Decode(&f); err != nil {
		return nil, fmt.Errorf("not a paddock backup: %w", err)
	}
	if f.Format != Format {
		return nil, fmt.Errorf("backup format %q: this paddock reads %s", f.Format, Format)
	}
	return &f, nil
}

// node is one znode as a walk read it.
type node struct {
	Znode
	mzxid, pzxid int64
}

// maxInFlight bounds the requests a walk keeps on the session.
const maxInFlight = 64

// each runs fn(0..n-1) with up to maxInFlight calls at once (their
// requests pipeline on the session) and joins their errors.
func each(ctx context.Context, n int, fn func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxInFlight)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// walk reads the tree under root: data and zxids of every persistent
// znode, parents before children.
func walk(ctx context.Context, conn *zk.Conn, root string) ([]node, error) {
	var out []node
	level := []string{root}
	for len(level) > 0 {
		nodes := make([]node, len(level))
		kids := make([][]string, len(level))
		skip := make([]bool, len(level))
		err := each(ctx, len(level), func(i int) error {
			p := level[i]
			data, st, err := conn.Get(p)
			if errors.Is(err, zk.ErrNoNode) {
				skip[i] = true // gone meanwhile: the next walk tells
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if st.EphemeralOwner != 0 {
				skip[i] = true
				return nil
			}
			n := node{Znode: Znode{Path: p, Data: data}, mzxid: st.Mzxid, pzxid: st.Pzxid}
			if st.NumChildren > 0 {
				names, cst, err := conn.Children(p)
				if err != nil && !errors.Is(err, zk.ErrNoNode) {
					return fmt.Errorf("list %s: %w", p, err)
				}
				if cst != nil {
					n.pzxid = cst.Pzxid
				}
				sort.Strings(names)
				for _, c := range names {
					kids[i] = append(kids[i], path.Join(p, c))
				}
			}
			nodes[i] = n
			return nil
		})
		if err != nil {
			return nil, err
		}
		level = nil
		for i := range nodes {
			if !skip[i] {
				out = append(out, nodes[i])
				level = append(level, kids[i]...)
			}
		}
	}
	return out, nil
}

// readACLs fills each znode's ACL.
func readACLs(ctx context.Context, conn *zk.Conn, zs []Znode) error {
	return each(ctx, len(zs), func(i int) error {
		acl, _, err := conn.GetACL(zs[i].Path)
		if err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("read the ACL of %s: %w", zs[i].Path, err)
		}
		zs[i].ACL = acl
		return nil
	})
}

// volatile znodes are observations their writers rewrite at will (an
// allocator's statuses): copied, but not held to the consistent cut.
func volatile(p string) bool {
	rest, ok := strings.CutPrefix(p, engine.PathAllocators+"/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) >= 2 && parts[1] == "status"
}

// same reports whether two walks read the same zxids everywhere.
func same(a, b []node) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path {
			return false
		}
		if volatile(a[i].Path) {
			continue
		}
		if a[i].mzxid != b[i].mzxid || a[i].pzxid != b[i].pzxid {
			return false
		}
	}
	return true
}

// Options tune a backup.
type Options struct {
	// Root is the tree to copy (default engine.Root).
	Root string
	// MaxWalks bounds the walks before giving up on a consistent cut
	// (default 10).
	MaxWalks int
}

// Take copies the tree under opts.Root through st's session (a super
// user's: security/** is readable by the director only), as a
// consistent cut.
func Take(ctx context.Context, st *engine.Store, opts Options) (*File, error) {
	if opts.Root == "" {
		opts.Root = engine.Root
	}
	if opts.MaxWalks <= 0 {
		opts.MaxWalks = 10
	}
	conn := st.Conn()
	prev, err := walk(ctx, conn, opts.Root)
	if err != nil {
		return nil, err
	}
	for w := 2; w <= opts.MaxWalks; w++ {
		cur, err := walk(ctx, conn, opts.Root)
		if err != nil {
			return nil, err
		}
		if same(prev, cur) {
			f := &File{Format: Format, CreatedAt: time.Now().UTC(), Root: opts.Root, Walks: w, Znodes: make([]Znode, len(cur))}
			for i, n := range cur {
				f.Znodes[i] = n.Znode
				f.Zxid = max(f.Zxid, n.mzxid, n.pzxid)
			}
			f.Zxid = max(f.Zxid, serverZxid(ctx, st))
			// ACLs are set when a znode is created and never changed: read
			// once, after the cut.
			if err := readACLs(ctx, conn, f.Znodes); err != nil {
				return nil, err
			}
			return f, nil
		}
		prev = cur
	}
	return nil, fmt.Errorf("the platform's state kept changing during %d walks of %s: no consistent copy; retry when fewer plans run", opts.MaxWalks, opts.Root)
}

// RestoreOptions tune a restore.
type RestoreOptions struct {
	// Force replaces an existing tree (it is deleted first).
	Force bool
	// ZxidMargin is how far past the backup's Zxid the restored server
	// is moved (transactions the clients saw after the backup, such as
	// allocators' heartbeats); default 50,000.
	ZxidMargin int64
	// Logger says what the restore could not do for the agents.
	Logger *slog.Logger
}

// serverZxid is the highest zxid the store's servers report (srvr), 0
// when none answers.
func serverZxid(ctx context.Context, st *engine.Store) int64 {
	var z int64
	for _, addr := range st.ServerList() {
		out, err := st.FourLetter(ctx, addr, "srvr")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Zxid:"); ok {
				if n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(v), "0x"), 16, 64); err == nil {
					z = max(z, n)
				}
			}
		}
	}
	return z
}

// scratchPath is the znode a restore writes to move the zxid on.
const scratchPath = "/paddock-restore-zxid"

// advanceZxid makes the server's transaction id pass target: ZooKeeper
// refuses a session to a client that saw a higher zxid than its own, so
// the agents of the lost ZooKeeper could not reconnect to the restored
// one before. Within one epoch (standalone, or an ensemble's first
// leader) cheap writes get there; a higher epoch cannot be reached that
// way: then the agents must be restarted (a new client starts from 0).
func advanceZxid(ctx context.Context, conn *zk.Conn, target int64, log *slog.Logger) error {
	if _, err := conn.Create(scratchPath, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("move the transaction id on: %w", err)
	}
	defer func() { _ = conn.Delete(scratchPath, -1) }()
	_, st, err := conn.Exists(scratchPath)
	if err != nil {
		return fmt.Errorf("move the transaction id on: %w", err)
	}
	cur := max(st.Mzxid, st.Czxid)
	if cur >= target {
		return nil
	}
	if target>>32 > cur>>32 {
		log.Warn("the restored ZooKeeper is in an earlier epoch than the lost one: restart every agent (allocators, proxies, constructors, API) so that they connect afresh",
			"backup_zxid", fmt.Sprintf("0x%x", target), "server_zxid", fmt.Sprintf("0x%x", cur))
		return nil
	}
	for cur < target {
		n := min(target-cur, 20000)
		if err := each(ctx, int(n), func(int) error {
			_, err := conn.Set(scratchPath, nil, -1)
			return err
		}); err != nil {
			return fmt.Errorf("move the transaction id on: %w", err)
		}
		if _, st, err = conn.Exists(scratchPath); err != nil {
			return fmt.Errorf("move the transaction id on: %w", err)
		}
		cur = st.Mzxid
	}
	return nil
}

// Restore writes f's znodes through st's session (a super user's) into
// a ZooKeeper without f.Root, parents first, with their ACLs.
func Restore(ctx context.Context, st *engine.Store, f *File, opts RestoreOptions) error {
	conn := st.Conn()
	if len(f.Znodes) == 0 || f.Znodes[0].Path != f.Root {
		return fmt.Errorf("the backup does not start with its root %s: damaged", f.Root)
	}
	ok, _, err := conn.Exists(f.Root)
	if err != nil {
		return fmt.Errorf("ZooKeeper: %w", err)
	}
	if ok {
		if !opts.Force {
			return fmt.Errorf("ZooKeeper already holds %s: restore goes into an empty ZooKeeper (or pass --force to replace what is there)", f.Root)
		}
		if err := st.DeleteTree(ctx, f.Root); err != nil {
			return fmt.Errorf("delete the existing %s: %w", f.Root, err)
		}
	}
	// By depth: a level is created in parallel once its parents exist.
	byDepth := map[int][]Znode{}
	maxDepth := 0
	for _, z := range f.Znodes {
		d := strings.Count(z.Path, "/")
		byDepth[d] = append(byDepth[d], z)
		maxDepth = max(maxDepth, d)
	}
	for d := 0; d <= maxDepth; d++ {
		if err := createAll(ctx, conn, byDepth[d]); err != nil {
			return err
		}
	}
	if err := bumpSequences(ctx, conn, f.Znodes); err != nil {
		return err
	}
	margin := opts.ZxidMargin
	if margin <= 0 {
		margin = 50000
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return advanceZxid(ctx, conn, f.Zxid+margin, log)
}

func createAll(ctx context.Context, conn *zk.Conn, zs []Znode) error {
	return each(ctx, len(zs), func(i int) error {
		z := zs[i]
		acl := z.ACL
		if len(acl) == 0 {
			acl = zk.WorldACL(zk.PermAll)
		}
		if _, err := conn.Create(z.Path, z.Data, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", z.Path, err)
		}
		return nil
	})
}

// bumpSequences moves the sequence counter of every parent of
// sequential-named children (name ending in 10 digits) past the highest
// restored one: ZooKeeper numbers the next sequential child after the
// parent's child-version, which a restore resets.
func bumpSequences(ctx context.Context, conn *zk.Conn, zs []Znode) error {
	maxSeq := map[string]int64{}
	for _, z := range zs {
		name := path.Base(z.Path)
		if len(name) < 11 || name[len(name)-11] != '-' {
			continue // not <prefix>-<10 digits>, as the platform names them
		}
		n, err := strconv.ParseInt(name[len(name)-10:], 10, 64)
		if err != nil {
			continue
		}
		parent := path.Dir(z.Path)
		maxSeq[parent] = max(maxSeq[parent], n)
	}
	for parent, m := range maxSeq {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			_, st, err := conn.Exists(parent)
			if err != nil {
				return fmt.Errorf("sequence of %s: %w", parent, err)
			}
			if int64(st.Cversion) > m {
				break
			}
			tmp := parent + "/restore-sequence-bump"
			if _, err := conn.Create(tmp, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return fmt.Errorf("sequence of %s: %w", parent, err)
			}
			if err := conn.Delete(tmp, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("sequence of %s: %w", parent, err)
			}
		}
	}
	return nil
}
