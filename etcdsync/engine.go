package etcdsync

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/secitemdb/secitemdb/secitem"
)

// Options tune an Engine. The zero value is usable.
type Options struct {
	// Interval bounds how long a change waits, locally or in etcd, before
	// the engine looks for it (a watch wakes it earlier for etcd's
	// changes). 0 means 100 ms.
	Interval time.Duration
	// Logger receives one line per failed round (never an item's
	// contents). Nil means no logging.
	Logger *slog.Logger
}

// Status is what an Engine reports of itself.
type Status struct {
	Group     string
	Revision  int64     // the last etcd revision applied to the store
	Pending   int       // local changes not yet in etcd
	Paused    bool      // Pause was called
	LastError string    // the last round's error ("" when it succeeded)
	LastSync  time.Time // the end of the last successful round
	Pushed    int       // items pushed since Start
	Pulled    int       // items applied from etcd since Start
}

// Engine keeps one store in sync with its group. Its methods are safe for
// concurrent use.
type Engine struct {
	db    *secitem.DB
	cli   *clientv3.Client
	group string
	keys  *groupKeys
	opts  Options

	round  sync.Mutex // one push/pull round at a time
	mu     sync.Mutex
	status Status
	paused bool

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs an engine for db, which must have joined group (Join). It
// syncs in the background until Close.
func Start(db *secitem.DB, cli *clientv3.Client, group string, opts Options) (*Engine, error) {
	keys, err := loadGroupKey(db, group)
	if err != nil {
		return nil, err
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	e := &Engine{db: db, cli: cli, group: group, keys: keys, opts: opts,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	e.status.Group = group
	if rev, err := e.revision(); err == nil {
		e.status.Revision = rev
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go e.run(ctx)
	go e.watch(ctx)
	return e, nil
}

// Close stops the engine (the store and the client stay open).
func (e *Engine) Close() error {
	e.cancel()
	<-e.done
	return nil
}

// Pause stops syncing until Resume; local changes keep being journaled.
func (e *Engine) Pause() {
	e.mu.Lock()
	e.paused = true
	e.status.Paused = true
	e.mu.Unlock()
}

// Resume starts syncing again after Pause.
func (e *Engine) Resume() {
	e.mu.Lock()
	e.paused = false
	e.status.Paused = false
	e.mu.Unlock()
	e.Poke()
}

// Poke asks for a round now (after a local write, for example).
func (e *Engine) Poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Status reports the engine's state.
func (e *Engine) Status() Status {
	e.mu.Lock()
	st := e.status
	e.mu.Unlock()
	if s, err := e.db.SyncStatus(); err == nil {
		st.Pending = s.Pending
	}
	return st
}

func (e *Engine) run(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(e.opts.Interval)
	defer t.Stop()
	for {
		e.mu.Lock()
		paused := e.paused
		e.mu.Unlock()
		if !paused {
			err := e.Sync(ctx)
			if err != nil && ctx.Err() == nil && e.opts.Logger != nil {
				e.opts.Logger.Warn("etcdsync round failed", "group", e.group, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
		}
	}
}

// watch turns etcd changes under the group into wake-ups; the rounds read
// the changes themselves, so a lost watch only delays them to the next
// tick.
func (e *Engine) watch(ctx context.Context) {
	for ctx.Err() == nil {
		wc := e.cli.Watch(clientv3.WithRequireLeader(ctx), itemsPrefix(e.group), clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		for resp := range wc {
			if resp.Err() != nil {
				break
			}
			if len(resp.Events) > 0 {
				e.Poke()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(e.opts.Interval):
		}
	}
}

// Sync runs one round now: push the journal, then pull what changed in
// etcd since the last applied revision. It returns the round's error
// (also kept in Status).
func (e *Engine) Sync(ctx context.Context) error {
	e.round.Lock()
	defer e.round.Unlock()
	pushed, err := e.push(ctx)
	pulled := 0
	if err == nil {
		pulled, err = e.pull(ctx)
	}
	e.mu.Lock()
	e.status.Pushed += pushed
	e.status.Pulled += pulled
	prev := e.status.LastError
	if err != nil {
		e.status.LastError = err.Error()
	} else {
		e.status.LastError = ""
		e.status.LastSync = time.Now()
	}
	changed := prev != e.status.LastError
	msg := e.status.LastError
	e.mu.Unlock()
	if changed && ctx.Err() == nil {
		// Kept in the store, so a later status (another process) sees it.
		var v []byte
		if msg != "" {
			v = []byte(msg)
		}
		_ = e.db.SetSyncState(map[string][]byte{errState(e.group): v})
	}
	return err
}

// StoredStatus reads what a store records of its sync group without an
// engine: the last applied revision, the pending changes and the last
// error an engine recorded. It works on a locked store too.
func StoredStatus(db *secitem.DB, group string) (Status, error) {
	st := Status{Group: group}
	// Joined or not: Join leaves a marker in the clear, so a locked store
	// (a passcode, before the first unlock) answers without its key. A
	// store joined before the marker existed is asked for its key item.
	v, err := db.SyncState(joinedState(group))
	if err != nil {
		return st, err
	}
	if v == nil {
		if _, err := loadGroupKey(db, group); err != nil {
			return st, err
		}
	}
	if v, err = db.SyncState(revState(group)); err != nil {
		return st, err
	}
	if v != nil {
		st.Revision, _ = strconv.ParseInt(string(v), 10, 64)
	}
	if v, err = db.SyncState(errState(group)); err != nil {
		return st, err
	}
	st.LastError = string(v)
	s, err := db.SyncStatus()
	st.Pending = s.Pending
	return st, err
}

// push sends the journal's items, oldest first, and trims what it sent.
func (e *Engine) push(ctx context.Context) (int, error) {
	var changes []secitem.SyncChange
	err := e.db.SyncChanges(func(c secitem.SyncChange) bool {
		changes = append(changes, c)
		return len(changes) < 256
	})
	if err != nil && len(changes) == 0 {
		return 0, err
	}
	pushed := 0
	for start := 0; start < len(changes); {
		// A batch: up to pushBatch distinct items (a change listed twice
		// carries the same current state), then one acknowledgement.
		end := start
		var batch []*secitem.SyncItem
		seen := map[string]bool{}
		for ; end < len(changes) && len(batch) < pushBatch; end++ {
			if it := changes[end].Item; it != nil && !seen[string(it.Key)] {
				seen[string(it.Key)] = true
				batch = append(batch, it)
			}
		}
		n, perr := e.pushItems(ctx, batch)
		pushed += n
		if perr != nil {
			return pushed, perr
		}
		if err := e.db.AckSyncChanges(changes[end-1].Seq); err != nil {
			return pushed, err
		}
		start = end
	}
	return pushed, err
}

// pushBatch bounds the items of one etcd transaction (etcd refuses more
// than 128 operations per transaction by default).
const pushBatch = 64

// beforeBatchPut, when set (by tests), runs between a batch's read and its
// write, to let another writer in.
var beforeBatchPut func()

// pushItems pushes a batch, retrying until it is in: it tries the whole
// batch once (tryPush), and when another store wrote one of its keys
// meanwhile, or etcd refuses the transaction (too large), it pushes the
// items one at a time, each retried until its compare holds. It returns
// the number of items written to etcd.
func (e *Engine) pushItems(ctx context.Context, items []*secitem.SyncItem) (int, error) {
	n, done, err := e.tryPush(ctx, items)
	if done || err != nil && (ctx.Err() != nil || len(items) == 1) {
		return n, err
	}
	pushed := 0
	for _, it := range items {
		for {
			n, done, err := e.tryPush(ctx, []*secitem.SyncItem{it})
			if err != nil {
				return pushed, err
			}
			if done {
				pushed += n
				break
			}
			// Someone wrote meanwhile: compare again.
		}
	}
	return pushed, nil
}

// tryPush makes one attempt at a batch in two round trips: one
// transaction reads every item's etcd key, one writes all the local
// versions that are newer than etcd's, on the condition that none of
// those keys changed in between; versions in etcd at least as new are
// applied locally instead. done is false when the condition failed
// (nothing was written or applied).
func (e *Engine) tryPush(ctx context.Context, items []*secitem.SyncItem) (pushed int, done bool, err error) {
	if len(items) == 0 {
		return 0, true, nil
	}
	names := make([]string, len(items))
	gets := make([]clientv3.Op, len(items))
	for i, it := range items {
		names[i] = e.keys.name(it.Key)
		gets[i] = clientv3.OpGet(names[i])
	}
	resp, err := e.cli.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return 0, false, err
	}
	var local []*secitem.SyncItem
	var cmps []clientv3.Cmp
	var puts []clientv3.Op
	for i, it := range items {
		name := names[i]
		cmp := clientv3.Compare(clientv3.CreateRevision(name), "=", 0)
		if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) == 1 {
			remote, err := e.keys.openItem(name, kvs[0].Value)
			if err == nil && !it.Newer(remote) {
				local = append(local, remote) // etcd's version wins (or is this one)
				continue
			}
			// A newer local version, or an undecryptable value (written
			// under another key: ours replaces it).
			cmp = clientv3.Compare(clientv3.ModRevision(name), "=", kvs[0].ModRevision)
		}
		sealed, err := e.keys.sealItem(name, it)
		if err != nil {
			return 0, false, err
		}
		cmps = append(cmps, cmp)
		puts = append(puts, clientv3.OpPut(name, string(sealed)))
	}
	if len(puts) > 0 {
		if beforeBatchPut != nil {
			beforeBatchPut()
		}
		txn, err := e.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			return 0, false, err
		}
		if !txn.Succeeded {
			return 0, false, nil
		}
	}
	if len(local) > 0 {
		if _, err := e.db.ApplySyncItems(local, nil); err != nil {
			return len(puts), true, err
		}
	}
	return len(puts), true, nil
}

// pull applies every item modified in etcd after the last applied
// revision, a page at a time, each page committed with the revision it
// brings the store to.
func (e *Engine) pull(ctx context.Context) (int, error) {
	from, err := e.revision()
	if err != nil {
		return 0, err
	}
	p := itemsPrefix(e.group)
	end := clientv3.GetPrefixRangeEnd(p)
	key := p
	var at int64 // the revision every page is read at
	pulled := 0
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithMinModRev(from + 1), clientv3.WithLimit(256)}
		if at != 0 {
			opts = append(opts, clientv3.WithRev(at))
		}
		resp, err := e.cli.Get(ctx, key, opts...)
		if err != nil {
			return pulled, err
		}
		if at == 0 {
			at = resp.Header.Revision
		}
		var items []*secitem.SyncItem
		for _, kv := range resp.Kvs {
			it, err := e.keys.openItem(string(kv.Key), kv.Value)
			if err != nil {
				if e.opts.Logger != nil {
					e.opts.Logger.Warn("etcdsync: skipping an item that does not open", "key", string(kv.Key), "err", err)
				}
				continue
			}
			items = append(items, it)
		}
		state := map[string][]byte{}
		if !resp.More {
			state[revState(e.group)] = []byte(strconv.FormatInt(at, 10))
		}
		n, err := e.db.ApplySyncItems(items, state)
		if err != nil {
			return pulled, err
		}
		pulled += n
		if !resp.More {
			e.mu.Lock()
			e.status.Revision = at
			e.mu.Unlock()
			return pulled, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// revision is the last etcd revision applied to the store.
func (e *Engine) revision() (int64, error) {
	v, err := e.db.SyncState(revState(e.group))
	if err != nil || v == nil {
		return 0, err
	}
	r, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, errors.New("etcdsync: the stored revision is damaged")
	}
	return r, nil
}
