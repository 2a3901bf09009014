// Package store is secitemdb's storage engine on bbolt: buckets, the
// record format, the keyed index, persistent references and the version
// table. It is the only package that imports bbolt.
//
// Buckets:
//
//	meta                format, store ID, keybag, attempt counter, merge marks
//	tip                 generation, version root, newest version chunk, log tail; its sequence numbers rows
//	genp inet cert keys records by row number (8 bytes big-endian)
//	idx                 postings: tag (12 bytes) ‖ row (8 bytes) → empty
//	plog                postings not yet in idx, one value per few commits (postlog.go)
//	vers                the version table (versions.go)
//
// Rows are numbered from one sequence for all classes and never reused,
// so row order is creation order.
//
// Read transactions look keys up in bbolt's memory map themselves, with
// bbolt answering whenever a page fails the reader's checks (direct.go);
// write transactions go through bbolt's buckets and cursors, except for
// index lookups made before they change the index.
package store

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/secitemdb/secitemdb/internal/failpoint"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// FormatVersion is the version of the file layout this package writes.
// Format 2 added the posting log (postlog.go); format 3 the tip (tip.go).
// An older store opens as is and becomes format 3 with its first commit.
const FormatVersion = 3

var (
	bucketMeta  = []byte("meta")
	bucketIndex = []byte("idx")
	keyFormat   = []byte("format")
	keyStoreID  = []byte("store-id")
	keyKeybag   = []byte("keybag")
)

func classBucket(c *schema.Class) []byte { return []byte(c.Code) }

// Options configure Open.
type Options struct {
	// Device supplies the device secret. Nil means a FileDevice at
	// path + ".device".
	Device protect.Device
	// Timeout bounds the wait for another process's file lock; 0 means 1s.
	Timeout time.Duration
	// ReadOnly opens the file shared and refuses writes (for inspection).
	ReadOnly bool
	// Anchor, when set, detects a rollback of the whole file: Open fails
	// with Decode when the file's generation is below the anchor's, and
	// every commit advances it.
	Anchor protect.Anchor
	// LookupCacheEntries limits the lookup cache (lookups.go): 0 means
	// DefaultLookupCacheEntries, a negative number turns it off, others
	// are rounded up to a power of two (at most MaxLookupCacheEntries).
	LookupCacheEntries int
}

// DB is an open store.
type DB struct {
	path    string
	bolt    *bbolt.DB
	kb      *protect.Keybag
	ix      *protect.Indexer
	storeID [protect.StoreIDSize]byte
	device  protect.Device
	anchor  protect.Anchor

	badChunks   map[uint64]bool // version chunks whose MAC failed at Open
	rootMatches bool            // the version root matched at Open
	failed      error           // set after a write failed in a way that leaves the handle unsafe
	mu          sync.Mutex
	wmu         sync.Mutex // one Update at a time, from its check of failed to its setting of it

	tags atomic.Pointer[tagCache] // see Tag

	plog      postingLog    // the logged postings, see postlog.go
	readers   readerSet     // read transactions in progress, see postlog.go
	lookups   lookupCache   // lookup-key posting lists, see lookups.go
	committed atomic.Uint64 // the last commit this handle knows of

	vcache versionCache                // see currentVersion
	roots  atomic.Pointer[bucketRoots] // see rootsAt
	group  committer                   // group commit, see Write
	rows   atomic.Uint64               // the last row number handed out, see Prepare
}

var (
	openMu    sync.Mutex
	openPaths = map[string]bool{}
)

// Open opens the store at path, creating it (and, with the default device,
// its device secret) when it does not exist. A new store is created in a
// temporary file and linked into place, so a crash never leaves a file that
// cannot be opened.
func Open(path string, opts Options) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, status.New(status.Param, "invalid path: %v", err)
	}
	openMu.Lock()
	if openPaths[abs] {
		openMu.Unlock()
		return nil, status.New(status.NotAvailable, "the store %s is already open in this process", path)
	}
	openPaths[abs] = true
	openMu.Unlock()
	db, err := open(abs, opts)
	if err != nil {
		openMu.Lock()
		delete(openPaths, abs)
		openMu.Unlock()
		return nil, err
	}
	return db, nil
}

func open(path string, opts Options) (*DB, error) {
	dev := opts.Device
	if dev == nil {
		dev = &protect.FileDevice{Path: path + ".device"}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if opts.ReadOnly {
			return nil, status.New(status.NotAvailable, "no store at %s", path)
		}
		if err := create(path, dev); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, ioError("failed to open store", err)
	} else if fd, ok := dev.(*protect.FileDevice); ok && opts.Device == nil {
		// The store exists: its secret must too. Never create one beside
		// it (a database copied without its secret would otherwise leave
		// a stray secret file behind on every attempt).
		fd.NoCreate = true
	}
	if err := checkFile(path); err != nil {
		return nil, err
	}
	bo := &bbolt.Options{Timeout: timeout, ReadOnly: opts.ReadOnly}
	bdb, err := openBolt(path, bo)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, status.New(status.NotAvailable, "the store %s is in use by another process (lock not acquired within %v)", path, timeout)
		}
		return nil, ioError("failed to open store", err)
	}
	db := &DB{path: path, bolt: bdb, device: dev, anchor: opts.Anchor}
	db.clearTags()
	db.lookups.limit = lookupLimit(opts.LookupCacheEntries)
	db.group.arrived = make(chan struct{}, 1)
	if err := db.load(); err != nil {
		bdb.Close()
		return nil, err
	}
	return db, nil
}

// openBolt opens the file with faults turned into errors.
func openBolt(path string, bo *bbolt.Options) (bdb *bbolt.DB, err error) {
	defer unguard(guard())
	defer recoverCorrupt(&err)
	return bbolt.Open(path, 0o600, bo)
}

func (db *DB) load() (err error) {
	defer unguard(guard())
	defer recoverCorrupt(&err)
	return db.bolt.View(func(btx *bbolt.Tx) error {
		meta := btx.Bucket(bucketMeta)
		if meta == nil {
			return status.New(status.Decode, "the file is not a secitemdb store (no meta bucket)")
		}
		f := meta.Get(keyFormat)
		if len(f) != 1 || f[0] < 1 || f[0] > FormatVersion {
			return status.New(status.Decode, "unsupported store format")
		}
		if f[0] == FormatVersion && btx.Bucket(bucketTip) == nil {
			return status.New(status.Decode, "the store is missing bucket %q", bucketTip)
		}
		for _, name := range allBuckets() {
			if btx.Bucket(name) == nil {
				return status.New(status.Decode, "the store is missing bucket %q", name)
			}
		}
		id := meta.Get(keyStoreID)
		if len(id) != protect.StoreIDSize {
			return status.New(status.Decode, "the store ID is damaged")
		}
		copy(db.storeID[:], id)
		blob := meta.Get(keyKeybag)
		if !fitsFile(btx, blob) {
			return status.New(status.Decode, "the keybag is damaged")
		}
		kb, err := protect.OpenKeybag(bytes.Clone(blob), db.device)
		switch {
		case errors.Is(err, protect.ErrWrongDevice):
			return status.New(status.AuthFailed, "the device secret does not belong to this store")
		case errors.Is(err, protect.ErrNoDeviceFile):
			// As for a wrong secret: this file cannot be opened here.
			return status.New(status.AuthFailed, "the device secret file of this store is missing: without it nothing in the store can be opened")
		case errors.Is(err, protect.ErrCorruptKeybag), errors.Is(err, protect.ErrDecode):
			return status.New(status.Decode, "the keybag is damaged")
		case err != nil:
			return status.New(status.NotAvailable, "the device secret is not available: %v", err)
		}
		if kb.StoreID() != db.storeID {
			kb.Close()
			return status.New(status.Decode, "the keybag belongs to another store")
		}
		// Rule out a tree bbolt would descend forever (a cycle) before
		// anything iterates it.
		if problems, sound := walkBranches(db.path, uint64(btx.ID())); !sound {
			kb.Close()
			return status.New(status.Decode, "the store file is damaged: %s", strings.Join(problems, "; "))
		}
		db.kb = kb
		db.ix = kb.Indexer()
		if err := db.checkAnchor(tipOf(btx).Get(keyGeneration)); err != nil {
			kb.Close()
			return err
		}
		db.badChunks, db.rootMatches = verifyVersions(btx, db.ix)
		db.rows.Store(rowSequence(btx))
		db.plog.load(btx)
		db.committed.Store(uint64(btx.ID()))
		db.lookups.reset(db.rows.Load(), uint64(btx.ID()))
		return nil
	})
}

func allBuckets() [][]byte {
	out := [][]byte{bucketMeta, bucketIndex, bucketVers}
	for _, c := range schema.Classes() {
		out = append(out, classBucket(c))
	}
	return out
}

// create makes a new store at path: a temporary file is initialised,
// synced and linked to path (never replacing a file another process
// created meanwhile), then the directory is synced.
func create(path string, dev protect.Device) error {
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := fmt.Sprintf("%s.creating-%x", path, suffix)
	defer os.Remove(tmp)
	storeID := protect.NewStoreID()
	kb, err := protect.NewKeybag(storeID, dev)
	if err != nil {
		return status.New(status.NotAvailable, "the device secret is not available: %v", err)
	}
	blob, _ := kb.MarshalBinary()
	kb.Close()
	bdb, err := bbolt.Open(tmp, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return ioError("failed to create store", err)
	}
	err = bdb.Update(func(btx *bbolt.Tx) error {
		for _, name := range append(allBuckets(), bucketPlog, bucketTip) {
			if _, err := btx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := btx.Bucket(bucketMeta)
		if err := meta.Put(keyFormat, []byte{FormatVersion}); err != nil {
			return err
		}
		if err := meta.Put(keyStoreID, storeID[:]); err != nil {
			return err
		}
		return meta.Put(keyKeybag, blob)
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return ioError("failed to create store", err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return ioError("failed to create store", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return ioError("failed to sync directory", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return ioError("failed to sync directory", err)
	}
	return nil
}

// Close closes the file and wipes the keys.
func (db *DB) Close() error {
	db.kb.Close()
	err := db.bolt.Close()
	openMu.Lock()
	delete(openPaths, db.path)
	openMu.Unlock()
	if err != nil {
		return ioError("failed to close store", err)
	}
	return nil
}

// Path returns the store's absolute path.
func (db *DB) Path() string { return db.path }

// Keybag returns the store's keybag.
func (db *DB) Keybag() *protect.Keybag { return db.kb }

// StoreID returns the store's random identifier.
func (db *DB) StoreID() [protect.StoreIDSize]byte { return db.storeID }

// Tx is a transaction over the store. It must not be used after the
// function it was passed to returns (read transactions are pooled: a Tx
// kept past its View would act on a later reader's transaction).
type Tx struct {
	db       *DB
	btx      *bbolt.Tx
	writable bool
	dirty    map[uint64][]byte // version chunks changed by this transaction

	generation  uint64 // the generation this transaction commits
	genWritten  bool
	skipJournal bool

	// Bucket handles, looked up once per transaction (a lookup is a
	// search of the root bucket and an allocation).
	bIndex, bVers, bTip *bbolt.Bucket
	bItems              [4]*bbolt.Bucket

	// Cursors not in use, kept for reuse: a cursor's allocation and its
	// stack are most of the garbage of a point lookup.
	spare    []*bbolt.Cursor
	spareArr [8]*bbolt.Cursor

	// The mapped data as this transaction sees it (see mapped), and for
	// its direct lookups (see direct.go: a read transaction's, and a write
	// transaction's in the index until it changes it) the bucket roots of
	// its commit and a cursor over the index.
	m      mapping
	roots  *bucketRoots
	mc     mcursor
	mcBusy bool
	// indexWritten is set once a write transaction changes the index (or
	// replaces its bucket): from then on its lookups in the index go
	// through bbolt, which holds the changes (see direct).
	indexWritten bool

	// Buffers for one compiled query at a time (see compile).
	tagBuf       [16]protect.Tag
	prefixBuf    [8][]byte
	compiledBusy bool

	// The posting log (postlog.go): this transaction's operations, the
	// tags whose entries it changed and the change to the live count (to
	// take back on rollback), and a cursor over a tag's postings.
	logOps  []byte
	logTags map[protect.Tag]struct{}
	logAll  bool // every tag's entries changed (a merge or a wipe)
	logLive int
	// Whether this transaction dropped damaged values from the log, and
	// the list before it did (restored on rollback).
	logEmptied    bool
	logDamagedWas []uint64
	ls            logSeeker
	lsBusy        bool

	seekBuf [tagSize + 8]byte // see intersect
	aadBuf  [512]byte         // see Read

	// The version a read transaction last found for a row (verRow, in
	// the version table or the lookup cache), so that the lookup cache
	// can keep it and a read of the same row does not look it up again.
	verOK          bool
	verRow, verVal uint64
}

// cursor returns a cursor on b, reused if the transaction has a spare one;
// give it back with release when done. (Each Seek starts again from the
// bucket's root, so a reused cursor sees the bucket as it is now, writes
// of this transaction included.)
func (tx *Tx) cursor(b *bbolt.Bucket) *bbolt.Cursor {
	for i := len(tx.spare) - 1; i >= 0; i-- {
		if c := tx.spare[i]; c.Bucket() == b {
			tx.spare[i] = tx.spare[len(tx.spare)-1]
			tx.spare = tx.spare[:len(tx.spare)-1]
			return c
		}
	}
	return b.Cursor()
}

// release gives back a cursor from cursor.
func (tx *Tx) release(c *bbolt.Cursor) {
	if tx.spare == nil {
		tx.spare = tx.spareArr[:0]
	}
	if len(tx.spare) < len(tx.spareArr) {
		tx.spare = append(tx.spare, c)
	}
}

// get is b.Get(key). (It was a cursor's Seek, reused, which differs on a
// damaged file: when a branch key is damaged and the search lands on the
// leaf before the key's, Get, like the map reader of read transactions,
// finds nothing, but Seek steps on to the next leaf and finds the key. A
// BI-2 case caught the disagreement: a read called an item lost that Add
// then called a duplicate. Write transactions now answer as reads do.)
func (tx *Tx) get(b *bbolt.Bucket, key []byte) []byte {
	return b.Get(key)
}

// getIn returns the value of key in bucket ref (nil when absent, or when
// it cannot be a stored value: see fitsFile): from the map in a read
// transaction, through bbolt in a write one.
func (tx *Tx) getIn(ref bucketRef, key []byte) []byte {
	if m, root, ok := tx.direct(ref); ok {
		if v, ok := m.tryGet(root, key); ok {
			return v
		}
		// A damaged page on the way: ask bbolt (see direct.go).
	}
	b := tx.bucket(ref)
	if b == nil {
		return nil
	}
	return tx.value(tx.get(b, key))
}

// bucket returns the handle of bucket ref (nil when it is missing).
func (tx *Tx) bucket(ref bucketRef) *bbolt.Bucket {
	switch ref {
	case refIndex:
		return tx.index()
	case refVers:
		return tx.vers()
	}
	b, _ := tx.items(storedClasses[ref-refItems])
	return b
}

// getRow returns the record of class c at row (nil if there is none or it
// cannot be a record: see fitsFile).
func (tx *Tx) getRow(c *schema.Class, row uint64) []byte {
	i := classIndex(c)
	if i < 0 {
		return nil
	}
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], row)
	return tx.getIn(refItems+bucketRef(i), key[:])
}

// value returns v, or nil when it cannot be a stored value (fitsFile).
func (tx *Tx) value(v []byte) []byte {
	if !tx.mapped().fits(v) {
		return nil
	}
	return v
}

// mapped returns the mapped data as this transaction sees it, looked up
// once per transaction (DB.Info allocates).
func (tx *Tx) mapped() *mapping {
	if tx.m.data == nil {
		tx.m = mapOf(tx.btx)
	}
	return &tx.m
}

// fitsFile reports whether v, a value bbolt handed out, can be real: a
// value read from the mapped file ends inside the file's data, and no
// value is larger than the file. bbolt believes the sizes in a leaf's
// element table, so a damaged one yields a slice reaching past the data,
// up to 4 GiB. Reading it would fault (the guard turns that into an error
// for the whole call), and copying or decrypting it would first allocate
// as much as the damaged size says; a value that fails this check is
// treated as a damaged record instead. (A write transaction's own values
// live in memory bbolt allocated, with their true sizes.)
func fitsFile(btx *bbolt.Tx, v []byte) bool {
	m := mapOf(btx)
	return m.fits(v)
}

// fits is fitsFile for the mapping m.
func (m *mapping) fits(v []byte) bool {
	if len(v) > len(m.data) {
		return false
	}
	if len(v) == 0 {
		return true
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	if p < base || p >= base+uintptr(len(m.data)) {
		return true // not in the mapping
	}
	return p+uintptr(len(v)) <= base+uintptr(len(m.data))
}

// index returns the postings bucket, for reading.
func (tx *Tx) index() *bbolt.Bucket {
	if tx.bIndex == nil {
		tx.bIndex = tx.btx.Bucket(bucketIndex)
	}
	return tx.bIndex
}

// indexForWrite returns the postings bucket for a change: every change to
// the index goes through it, so that the transaction's later lookups see
// the change (see direct).
func (tx *Tx) indexForWrite() *bbolt.Bucket {
	tx.indexWritten = true
	return tx.index()
}

// vers returns the version-table bucket.
func (tx *Tx) vers() *bbolt.Bucket {
	if tx.bVers == nil {
		tx.bVers = tx.btx.Bucket(bucketVers)
	}
	return tx.bVers
}

// forgetBuckets drops the cached handles (after buckets are recreated).
func (tx *Tx) forgetBuckets() {
	tx.bIndex, tx.bVers, tx.bTip, tx.bItems = nil, nil, nil, [4]*bbolt.Bucket{}
	tx.indexWritten = true // the buckets were replaced
}

// View runs fn in a read-only transaction.
func (db *DB) View(fn func(*Tx) error) (err error) {
	defer unguard(guard())
	defer recoverCorrupt(&err)
	// Registered before bbolt's transaction begins, with a commit no newer
	// than the one it will read: the log's ended entries it may need stay.
	defer db.readers.leave(db.enterReader())
	err = db.bolt.View(func(btx *bbolt.Tx) error {
		// Read transactions come from a pool: a Tx carries kilobytes of
		// buffers, and nothing keeps one past its transaction. A pooled
		// Tx is zero (cleared before it went back, or new), so only two
		// fields are set here: writing the whole struct again cost a
		// read about 85 ns (BENCHMARKS.md, Run 13).
		tx := readTxPool.Get().(*Tx)
		tx.db, tx.btx = db, btx
		defer func() {
			*tx = Tx{}
			readTxPool.Put(tx)
		}()
		return fn(tx)
	})
	return mapBoltError(err)
}

// enterReader registers a read transaction about to begin, under the last
// commit this handle knows of (no newer than the one it will read); give
// the result to readers.leave when it ends.
func (db *DB) enterReader() readerHandle {
	return db.readers.enter(db.committed.Load())
}

var readTxPool = sync.Pool{New: func() any { return new(Tx) }}

// Update runs fn in a read-write transaction, committed (and synced)
// when fn returns nil and rolled back otherwise. After a failed commit the
// handle refuses further writes until it is reopened: the outcome of that
// commit is unknown, and an fsync error must never be retried as if the
// data were safe.
func (db *DB) Update(fn func(*Tx) error) (err error) {
	if db.bolt.IsReadOnly() {
		return status.New(status.ReadOnly, "the store is open read-only")
	}
	defer unguard(guard())
	defer recoverCorrupt(&err)
	// Writers are serialized here and not only by bbolt's lock: a commit
	// that fails leaves its posting-log changes in the table (readers of
	// an earlier commit cannot see them; the file may or may not have the
	// commit), and the next writer would reuse its transaction ID and
	// publish them. So the failure is recorded before the next writer
	// checks for it.
	db.wmu.Lock()
	defer db.wmu.Unlock()
	db.mu.Lock()
	failed := db.failed
	db.mu.Unlock()
	if failed != nil {
		return status.New(status.IO, "an earlier write failed (%v); close and reopen the store", failed)
	}
	fnErr := false
	committing := false // fn and the flushes succeeded: what fails now is bbolt's commit
	defer func() {
		if r := recover(); r != nil {
			if committing {
				// A panic inside Commit (a damaged page met while
				// rebalancing): the outcome is unknown, as for an error.
				db.mu.Lock()
				db.failed = fmt.Errorf("the commit panicked: %v", r)
				db.mu.Unlock()
			}
			panic(r) // for recoverCorrupt
		}
	}()
	var generation, txid uint64
	err = db.bolt.Update(func(btx *bbolt.Tx) (err error) {
		tx := &Tx{db: db, btx: btx, writable: true}
		txid = tx.txid()
		db.lookups.grow(db.rows.Load(), txid)
		defer func() {
			// A rolled-back transaction takes its log entries back.
			if r := recover(); r != nil {
				tx.undoLog()
				panic(r)
			}
			if err != nil {
				tx.undoLog()
			}
		}()
		err = fn(tx)
		if err == nil {
			err = tx.flushLog()
		}
		if err == nil {
			err = tx.flushVersions()
		}
		if err == nil && !tx.genWritten {
			err = tx.bumpGeneration(db.kb, db.kb)
		}
		if err == nil {
			err = failpoint.Hit("store:before-commit")
		}
		generation = tx.generation
		fnErr = err != nil
		committing = !fnErr
		return err
	})
	if err != nil && !fnErr {
		// The commit itself failed.
		db.mu.Lock()
		db.failed = err
		db.mu.Unlock()
	}
	if err != nil {
		return mapBoltError(err)
	}
	db.committed.Store(txid)
	if err := failpoint.Hit("store:after-commit"); err != nil {
		return err
	}
	return db.advanceAnchor(generation)
}

// recoverCorrupt turns a bbolt panic on a damaged page into an error.
func recoverCorrupt(err *error) {
	if r := recover(); r != nil {
		*err = status.New(status.Decode, "the store file is damaged: %v", r)
	}
}

func mapBoltError(err error) error {
	if err == nil {
		return nil
	}
	var se *status.Error
	if errors.As(err, &se) {
		return err
	}
	return ioError("storage error", err)
}

func ioError(what string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EFBIG), errors.Is(err, syscall.EDQUOT),
		// bbolt reports a failed file resize with %s, not %w.
		containsErrno(err, syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT):
		return &status.Error{Code: status.DiskFull, Detail: what + ": " + err.Error()}
	case errors.Is(err, berrors.ErrDatabaseReadOnly):
		return &status.Error{Code: status.ReadOnly, Detail: what + ": " + err.Error()}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
		return &status.Error{Code: status.Decode, Detail: what + ": " + err.Error()}
	}
	return &status.Error{Code: status.IO, Detail: what + ": " + err.Error()}
}

// containsErrno reports whether err's message ends with the text of one of
// errnos (for errors wrapped without %w).
func containsErrno(err error, errnos ...syscall.Errno) bool {
	msg := err.Error()
	for _, e := range errnos {
		if strings.HasSuffix(msg, e.Error()) {
			return true
		}
	}
	return false
}

func protectEqual(a, b []byte) bool { return hmac.Equal(a, b) }
