package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/go-zookeeper/zk"
)

// Options configure a store connection.
type Options struct {
	// Servers is a comma-separated ZooKeeper connection string.
	Servers string
	// SessionTimeout (default 10s).
	SessionTimeout time.Duration
	// ConnectTimeout bounds the wait for the first session (default 10s).
	ConnectTimeout time.Duration
	// Dialer replaces net.DialTimeout under the ZooKeeper connection (the
	// director's TLS tunnel plugs in here).
	Dialer func(network, address string, timeout time.Duration) (net.Conn, error)
	// Role and its credential. An empty credential connects
	// unauthenticated (bootstrap checks, tests of refusals).
	Role       Role
	Credential Credential
	// Own is an allocator's own credential (allocator-<id>).
	Own *Credential
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Store is the typed state store over ZooKeeper. It is safe for
// concurrent use.
type Store struct {
	conn *zk.Conn
	opts Options
	log  *slog.Logger

	mu  sync.RWMutex
	ids Identities
	own map[string]string // allocator id → digest id

	subMu sync.Mutex
	subs  map[chan struct{}]struct{}
	state zk.State

	watches watchHub
	stats   storeStats
}

// Version is a znode's data version, for compare-and-set. AnyVersion
// writes unconditionally.
type Version = int32

// AnyVersion matches every version.
const AnyVersion Version = -1

// Connect opens a session, authenticates and loads the platform
// identities. It returns once a session exists, or an error naming the
// servers it tried and what to do when ctx or ConnectTimeout ends first.
func Connect(ctx context.Context, opts Options) (*Store, error) {
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 10 * time.Second
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	servers := splitServers(opts.Servers)
	if len(servers) == 0 {
		return nil, fmt.Errorf("no ZooKeeper address: pass --zk host:port or set PADDOCK_ZK")
	}
	s := &Store{opts: opts, log: opts.Logger, own: map[string]string{}, subs: map[chan struct{}]struct{}{}}
	dialer := opts.Dialer
	if dialer == nil {
		dialer = net.DialTimeout
	}
	conn, _, err := zk.Connect(servers, opts.SessionTimeout,
		zk.WithLogger(zkLogger{s.log}), zk.WithEventCallback(s.onEvent), zk.WithDialer(bufferedDialer(dialer)))
	if err != nil {
		return nil, fmt.Errorf("connect to ZooKeeper at %s: %w", opts.Servers, err)
	}
	s.conn = conn
	if err := s.waitSession(ctx, opts.ConnectTimeout); err != nil {
		conn.Close()
		return nil, err
	}
	if opts.Credential.User != "" {
		if err := conn.AddAuth("digest", []byte(opts.Credential.User+":"+opts.Credential.Password)); err != nil {
			conn.Close()
			return nil, wrapErr("authenticate", opts.Credential.User, err)
		}
	}
	if opts.Own != nil {
		if err := conn.AddAuth("digest", []byte(opts.Own.User+":"+opts.Own.Password)); err != nil {
			conn.Close()
			return nil, wrapErr("authenticate", opts.Own.User, err)
		}
	}
	if err := s.LoadIdentities(ctx); err != nil && !errors.Is(err, ErrNotFound) {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// bufferedDialer wraps dial's connections in a read buffer: the
// client reads each answer's 4-byte length, then its body, a system
// call each; through the buffer one call reads every answer that has
// arrived (a burst of pipelined reads or watch events).
func bufferedDialer(dial zk.Dialer) zk.Dialer {
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		c, err := dial(network, address, timeout)
		if err != nil {
			return nil, err
		}
		return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
	}
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func splitServers(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !strings.Contains(p, ":") {
				p += ":2181"
			}
			out = append(out, p)
		}
	}
	return out
}

func (s *Store) waitSession(ctx context.Context, timeout time.Duration) error {
	ch, cancel := s.Subscribe()
	defer cancel()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if s.conn.State() == zk.StateHasSession {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s.unavailable(ctx.Err())
		case <-t.C:
			return s.unavailable(fmt.Errorf("no session within %s", timeout))
		}
	}
}

func (s *Store) unavailable(cause error) error {
	return fmt.Errorf("%w at %s (%v): start one with `scripts/zk.sh start` or `paddock up`, or point --zk / PADDOCK_ZK at a running server",
		ErrUnavailable, s.opts.Servers, cause)
}

// onEvent runs on go-zookeeper's receive loop: it must not block.
func (s *Store) onEvent(ev zk.Event) {
	if ev.Type != zk.EventSession {
		if ev.Path != "" {
			s.dispatchWatch(ev)
		}
		return
	}
	s.subMu.Lock()
	s.state = ev.State
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.subMu.Unlock()
	s.log.Debug("zookeeper session", "state", ev.State.String(), "server", ev.Server)
}

// Subscribe returns a channel that receives a signal (coalesced) after
// every session state change; read State and SessionID then. Cancel
// releases it.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.subMu.Lock()
	s.subs[ch] = struct{}{}
	s.subMu.Unlock()
	return ch, func() {
		s.subMu.Lock()
		delete(s.subs, ch)
		s.subMu.Unlock()
	}
}

// State is the connection state (zk.StateHasSession when usable).
func (s *Store) State() zk.State { return s.conn.State() }

// Connected reports whether the store holds a live session now.
func (s *Store) Connected() bool { return s.conn.State() == zk.StateHasSession }

// SessionID is the current session id (changes after an expiry).
func (s *Store) SessionID() int64 { return s.conn.SessionID() }

// Conn exposes the raw connection for the director (reconfig) and tests.
func (s *Store) Conn() *zk.Conn { return s.conn }

// Role is the role this store authenticated as.
func (s *Store) Role() Role { return s.opts.Role }

// Servers is the connection string.
func (s *Store) Servers() string { return s.opts.Servers }

// Close ends the session (ephemerals go at once).
func (s *Store) Close() { s.conn.Close() }

// LoadIdentities reads the role identities from the platform config.
func (s *Store) LoadIdentities(ctx context.Context) error {
	var cfg PlatformConfig
	if _, err := s.GetJSON(ctx, PathConfig, &cfg); err != nil {
		return err
	}
	s.SetIdentities(cfg.Identities)
	return nil
}

// SetIdentities sets the role identities used for ACLs of new znodes.
func (s *Store) SetIdentities(ids Identities) {
	s.mu.Lock()
	s.ids = ids
	s.mu.Unlock()
}

// Identities returns the role identities in use.
func (s *Store) Identities() Identities {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ids
}

// do runs a blocking ZooKeeper call, giving up when ctx ends. The call
// itself cannot be cancelled; it finishes or fails on its own.
func do[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

func marshal(v any) ([]byte, error) {
	switch b := v.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	}
	return json.Marshal(v)
}

// Stat is the part of a znode's stat the platform uses.
type Stat struct {
	Version        Version
	Ctime, Mtime   time.Time
	EphemeralOwner int64
	NumChildren    int32
	Mzxid          int64
}

func toStat(st *zk.Stat) Stat {
	if st == nil {
		return Stat{}
	}
	return Stat{Version: st.Version, Ctime: time.UnixMilli(st.Ctime), Mtime: time.UnixMilli(st.Mtime),
		EphemeralOwner: st.EphemeralOwner, NumChildren: st.NumChildren, Mzxid: st.Mzxid}
}

// Get reads a znode's data and stat.
func (s *Store) Get(ctx context.Context, p string) ([]byte, Stat, error) {
	type r struct {
		b  []byte
		st *zk.Stat
	}
	s.read("get", p)
	res, err := do(ctx, func() (r, error) {
		b, st, err := s.conn.Get(p)
		return r{b, st}, err
	})
	if err != nil {
		return nil, Stat{}, wrapErr("get", p, err)
	}
	return res.b, toStat(res.st), nil
}

// GetJSON reads a znode into v and returns its version.
func (s *Store) GetJSON(ctx context.Context, p string, v any) (Version, error) {
	b, st, err := s.Get(ctx, p)
	if err != nil {
		return 0, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return 0, fmt.Errorf("decode %s: %w (the record is malformed: fix or delete it)", p, err)
	}
	return st.Version, nil
}

// Exists reports whether a znode exists.
func (s *Store) Exists(ctx context.Context, p string) (bool, Stat, error) {
	type r struct {
		ok bool
		st *zk.Stat
	}
	s.read("exists", p)
	res, err := do(ctx, func() (r, error) {
		ok, st, err := s.conn.Exists(p)
		return r{ok, st}, err
	})
	if err != nil {
		return false, Stat{}, wrapErr("exists", p, err)
	}
	return res.ok, toStat(res.st), nil
}

// Children lists a znode's children, sorted.
func (s *Store) Children(ctx context.Context, p string) ([]string, error) {
	s.read("children", p)
	ch, err := do(ctx, func() ([]string, error) {
		c, _, err := s.conn.Children(p)
		return c, err
	})
	if err != nil {
		return nil, wrapErr("children", p, err)
	}
	sortStrings(ch)
	return ch, nil
}

// aclFor resolves the ACL of p from the table.
func (s *Store) aclFor(ctx context.Context, p string) ([]zk.ACL, error) {
	own := ""
	if id, ok := NeedsOwnIdentity(p); ok {
		var err error
		if own, err = s.allocatorIdentity(ctx, id); err != nil {
			return nil, err
		}
	}
	acl, err := ACLFor(p, s.Identities(), own)
	if err != nil {
		return nil, &StoreError{Op: "acl", Path: p, Cause: err}
	}
	return acl, nil
}

func (s *Store) allocatorIdentity(ctx context.Context, id string) (string, error) {
	if s.opts.Own != nil && s.opts.Own.User == OwnAllocatorUser(id) {
		return s.opts.Own.DigestID(), nil
	}
	s.mu.RLock()
	own := s.own[id]
	s.mu.RUnlock()
	if own != "" {
		return own, nil
	}
	var a Allocator
	if _, err := s.GetJSON(ctx, AllocatorPath(id), &a); err != nil {
		return "", fmt.Errorf("identity of allocator %s: %w", id, err)
	}
	if a.Identity == "" {
		return "", fmt.Errorf("allocator %s has no identity in its record: restart it to re-register", id)
	}
	s.mu.Lock()
	s.own[id] = a.Identity
	s.mu.Unlock()
	return a.Identity, nil
}

// KnowAllocatorIdentity records an allocator's identity (the digest id
// in its record) as read elsewhere, by a cache of the allocators: the
// ACL of its znodes then needs no read of the record.
func (s *Store) KnowAllocatorIdentity(id, identity string) {
	if identity == "" {
		return
	}
	s.mu.Lock()
	s.own[id] = identity
	s.mu.Unlock()
}

// Create makes a persistent znode holding v (JSON unless []byte/string),
// with the ACL of its path.
func (s *Store) Create(ctx context.Context, p string, v any) error {
	_, err := s.create(ctx, p, v, 0)
	return err
}

// CreateEphemeral makes an ephemeral znode (gone with the session).
func (s *Store) CreateEphemeral(ctx context.Context, p string, v any) error {
	_, err := s.create(ctx, p, v, zk.FlagEphemeral)
	return err
}

// CreateSequential makes a sequential znode under prefix and returns its
// path; ephemeral when asked.
func (s *Store) CreateSequential(ctx context.Context, prefix string, v any, ephemeral bool) (string, error) {
	flags := int32(zk.FlagSequence)
	if ephemeral {
		flags |= zk.FlagEphemeral
	}
	return s.create(ctx, prefix, v, flags)
}

func (s *Store) create(ctx context.Context, p string, v any, flags int32) (string, error) {
	b, err := marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", p, err)
	}
	acl, err := s.aclFor(ctx, p)
	if err != nil {
		return "", err
	}
	s.stats.writes.Add(1)
	out, err := do(ctx, func() (string, error) {
		out, err := s.conn.Create(p, b, flags, acl)
		s.noteWrites(p)
		return out, err
	})
	return out, wrapErr("create", p, err)
}

// Set writes v if the znode's version is still version (AnyVersion
// writes unconditionally). A lost race returns ErrConflict.
func (s *Store) Set(ctx context.Context, p string, v any, version Version) (Version, error) {
	b, err := marshal(v)
	if err != nil {
		return 0, fmt.Errorf("encode %s: %w", p, err)
	}
	s.stats.writes.Add(1)
	st, err := do(ctx, func() (*zk.Stat, error) {
		st, err := s.conn.Set(p, b, version)
		s.noteWrites(p)
		return st, err
	})
	if err != nil {
		return 0, wrapErr("set", p, err)
	}
	return st.Version, nil
}

// Put creates p or overwrites it unconditionally.
func (s *Store) Put(ctx context.Context, p string, v any) error {
	_, err := s.Set(ctx, p, v, AnyVersion)
	if errors.Is(err, ErrNotFound) {
		err = s.Create(ctx, p, v)
		if errors.Is(err, ErrExists) {
			_, err = s.Set(ctx, p, v, AnyVersion)
		}
	}
	return err
}

// Delete removes p if its version is still version.
func (s *Store) Delete(ctx context.Context, p string, version Version) error {
	s.stats.writes.Add(1)
	_, err := do(ctx, func() (struct{}, error) {
		err := s.conn.Delete(p, version)
		s.noteWrites(p)
		return struct{}{}, err
	})
	return wrapErr("delete", p, err)
}

// DeleteTree removes p and everything under it (missing is not an error).
func (s *Store) DeleteTree(ctx context.Context, p string) error {
	kids, err := s.Children(ctx, p)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := s.DeleteTree(ctx, path.Join(p, k)); err != nil {
			return err
		}
	}
	if err := s.Delete(ctx, p, AnyVersion); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// Update reads p into v, calls fn to change v, and writes it back with
// compare-and-set, retrying on conflict (bounded). fn must be free of
// side effects: it can run more than once. Returning ErrNoChange from fn
// skips the write.
func (s *Store) Update(ctx context.Context, p string, v any, fn func() error) (Version, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = time.Millisecond, 50*time.Millisecond
	ver, err := backoff.Retry(ctx, func() (Version, error) {
		ver, err := s.GetJSON(ctx, p, v)
		if err != nil {
			return 0, backoff.Permanent(err)
		}
		if err := fn(); err != nil {
			if errors.Is(err, ErrNoChange) {
				return ver, nil
			}
			return 0, backoff.Permanent(err)
		}
		nv, err := s.Set(ctx, p, v, ver)
		if err != nil && !errors.Is(err, ErrConflict) {
			return 0, backoff.Permanent(err)
		}
		return nv, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(20), backoff.WithMaxElapsedTime(0))
	if errors.Is(err, ErrConflict) {
		return 0, &StoreError{Op: "update", Path: p, Kind: ErrConflict, Cause: errors.New("too many concurrent writers")}
	}
	return ver, err
}

// ErrNoChange, returned by an Update function, skips the write.
var ErrNoChange = errors.New("no change")

// Op is one operation of a Multi.
type Op struct {
	kind    string
	path    string
	value   any
	version Version
	flags   int32
}

// OpCreate creates p holding v.
func OpCreate(p string, v any) Op { return Op{kind: "create", path: p, value: v} }

// OpCreateEphemeral creates an ephemeral p holding v.
func OpCreateEphemeral(p string, v any) Op {
	return Op{kind: "create", path: p, value: v, flags: zk.FlagEphemeral}
}

// OpSet sets p to v if its version is version.
func OpSet(p string, v any, version Version) Op {
	return Op{kind: "set", path: p, value: v, version: version}
}

// OpDelete deletes p if its version is version.
func OpDelete(p string, version Version) Op { return Op{kind: "delete", path: p, version: version} }

// OpCheck asserts p's version.
func OpCheck(p string, version Version) Op { return Op{kind: "check", path: p, version: version} }

// Multi applies ops atomically: all or nothing. The error names the
// first failing op (MultiOpError says which).
func (s *Store) Multi(ctx context.Context, ops ...Op) error {
	_, err := s.MultiResults(ctx, ops...)
	return err
}

// OpResult is what one operation of a successful Multi did: the path
// (a sequential create's name) and the znode's new data version.
type OpResult struct {
	Path    string
	Version Version
}

// MultiOpError is the cause inside the StoreError of a failed Multi:
// which operation failed (index in the ops given) and why.
type MultiOpError struct {
	Index int
	Op    string
	Path  string
	Err   error
}

func (e *MultiOpError) Error() string { return e.Err.Error() }

// Unwrap is the ZooKeeper error.
func (e *MultiOpError) Unwrap() error { return e.Err }

// FailedOp returns the index of the operation that made a Multi fail
// (false when err is not a Multi's).
func FailedOp(err error) (int, bool) {
	var me *MultiOpError
	if errors.As(err, &me) {
		return me.Index, true
	}
	return 0, false
}

// MultiResults is Multi returning what each operation did.
func (s *Store) MultiResults(ctx context.Context, ops ...Op) ([]OpResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	reqs := make([]any, 0, len(ops))
	for _, op := range ops {
		switch op.kind {
		case "create":
			b, err := marshal(op.value)
			if err != nil {
				return nil, fmt.Errorf("encode %s: %w", op.path, err)
			}
			acl, err := s.aclFor(ctx, op.path)
			if err != nil {
				return nil, err
			}
			reqs = append(reqs, &zk.CreateRequest{Path: op.path, Data: b, Acl: acl, Flags: op.flags})
		case "set":
			b, err := marshal(op.value)
			if err != nil {
				return nil, fmt.Errorf("encode %s: %w", op.path, err)
			}
			reqs = append(reqs, &zk.SetDataRequest{Path: op.path, Data: b, Version: op.version})
		case "delete":
			reqs = append(reqs, &zk.DeleteRequest{Path: op.path, Version: op.version})
		case "check":
			reqs = append(reqs, &zk.CheckVersionRequest{Path: op.path, Version: op.version})
		}
	}
	s.stats.multis.Add(1)
	s.stats.multiOps.Add(int64(len(reqs)))
	res, err := do(ctx, func() ([]zk.MultiResponse, error) {
		res, err := s.conn.Multi(reqs...)
		paths := make([]string, 0, len(ops))
		for _, op := range ops {
			if op.kind != "check" {
				paths = append(paths, op.path)
			}
		}
		s.noteWrites(paths...)
		return res, err
	})
	if err != nil {
		failed := "multi"
		for i, r := range res {
			if r.Error != nil && i < len(ops) {
				failed = ops[i].kind + " " + ops[i].path
				err = &MultiOpError{Index: i, Op: ops[i].kind, Path: ops[i].path, Err: r.Error}
				break
			}
		}
		return nil, wrapErr("multi", failed, err)
	}
	out := make([]OpResult, len(ops))
	for i := range ops {
		out[i].Path = ops[i].path
		if i < len(res) {
			if res[i].String != "" {
				out[i].Path = res[i].String
			}
			if res[i].Stat != nil {
				out[i].Version = res[i].Stat.Version
			}
		}
	}
	return out, nil
}

// Path is the znode an operation acts on.
func (o Op) Path() string { return o.path }

// EnsurePath creates p and its missing parents (empty data).
func (s *Store) EnsurePath(ctx context.Context, p string) error {
	if p == "/" || p == "" {
		return nil
	}
	ok, _, err := s.Exists(ctx, p)
	if err != nil || ok {
		return err
	}
	if err := s.EnsurePath(ctx, parent(p)); err != nil {
		return err
	}
	if err := s.Create(ctx, p, nil); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	return nil
}

// Sync makes the server catch up with the leader before the next read.
func (s *Store) Sync(ctx context.Context, p string) error {
	_, err := do(ctx, func() (string, error) { return s.conn.Sync(p) })
	return wrapErr("sync", p, err)
}

type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	z.l.Debug(fmt.Sprintf(format, args...))
}
