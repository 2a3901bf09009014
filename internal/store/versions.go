package store

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/protect"
)

// The version table detects a record replayed from an older copy of the
// file. AAD binding stops a sealed part from moving between rows, but an
// old version of the same row carries its own valid AAD; what it cannot
// carry is the current version number, kept here.
//
// Bucket "vers" maps chunk number (row / 64, 8 bytes big-endian) to the
// current versions of its 64 rows (8 bytes each, 0 = no item) followed by
// a MAC over the chunk number and those versions; the chunk of the newest
// rows is kept in the tip instead (tip.go). The tip's "vroot" holds the
// XOR over all chunks of MAC(chunk number ‖ chunk MAC), updated in O(1)
// per write. Open checks every chunk MAC (a damaged chunk makes its rows
// unreadable, ErrDecode) and the root (a mismatch means a chunk was
// replayed as a whole: the file was partly rolled back; it is reported by
// Check). Every read compares the record's version with its chunk's.
const (
	chunkRows = 64
	chunkSize = chunkRows*8 + protect.MACSize
)

var (
	bucketVers = []byte("vers")
	keyVRoot   = []byte("vroot")
)

func chunkOf(row uint64) (key []byte, slot int) {
	return binary.BigEndian.AppendUint64(nil, row/chunkRows), int(row % chunkRows)
}

func chunkMAC(ix *protect.Indexer, key, versions []byte) [protect.MACSize]byte {
	return ix.MAC([]byte("vchunk"), key, versions)
}

func rootTerm(ix *protect.Indexer, key, mac []byte) [protect.MACSize]byte {
	return ix.MAC([]byte("vroot"), key, mac)
}

// currentVersion returns the version the table holds for row, as this
// transaction sees it. A read transaction remembers the last row it asked
// about and its version, which the lookup cache may also have given it
// (findPosted), and asks the table only for another row.
func (tx *Tx) currentVersion(row uint64) uint64 {
	n, slot := row/chunkRows, int(row%chunkRows)
	if c, ok := tx.dirty[n]; ok {
		return binary.BigEndian.Uint64(c[slot*8:])
	}
	if tx.writable {
		return tx.tableVersion(row)
	}
	if v := tx.versionRead(row); v != 0 {
		return v
	}
	v := tx.tableVersion(row)
	tx.verOK, tx.verRow, tx.verVal = true, row, v
	return v
}

// versionRead returns the version a read transaction remembers for row
// (the last row it asked about, or was told about by the lookup cache),
// 0 when it remembers none or another row's. A remembered 0 is looked up
// again, which costs a lookup and is still right.
func (tx *Tx) versionRead(row uint64) uint64 {
	if tx.verOK && tx.verRow == row {
		return tx.verVal
	}
	return 0
}

// tableVersion returns row's version as the committed version table
// holds it (through the version cache, for a read transaction).
func (tx *Tx) tableVersion(row uint64) uint64 {
	n, slot := row/chunkRows, int(row%chunkRows)
	txid := uint64(tx.btx.ID())
	if !tx.writable {
		if e := tx.db.vcache.get(txid, n); e != nil {
			return binary.BigEndian.Uint64(e.versions[slot*8:])
		}
	}
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], n)
	v := tx.storedChunk(key[:], n)
	if v == nil {
		return 0
	}
	if !tx.writable {
		tx.db.vcache.put(txid, n, v)
	}
	return binary.BigEndian.Uint64(v[slot*8:])
}

// versionCache keeps version chunks as read transactions found them, so
// a read does not search the version table again. A chunk's content at a
// given commit (transaction ID) never changes, so an entry is exact for
// every read transaction of that commit and useless to the others, which
// read the table and replace it. Write transactions bypass it.
//
// Chunk n has one slot, n modulo the table's size; an entry is never
// changed once stored, so readers take no lock. An entry of an older
// commit never replaces a newer one: readers of an old snapshot still
// open would otherwise keep taking the slots from the readers of the
// newest commit, who are most of them.
type versionCache struct {
	slots [maxCachedChunks]atomic.Pointer[cachedChunk]
}

// cachedChunk is chunk n's versions as commit txid holds them.
type cachedChunk struct {
	txid, n  uint64
	versions [chunkRows * 8]byte
}

// maxCachedChunks bounds the cache: the versions of a million rows, in
// entries of 528 bytes (576 with the allocator's rounding), about 9 MiB
// when every slot is filled, besides the 128 KiB of slots every handle
// holds.
const maxCachedChunks = 1 << 14

func (c *versionCache) get(txid, n uint64) *cachedChunk {
	if e := c.slots[n%maxCachedChunks].Load(); e != nil && e.txid == txid && e.n == n {
		return e
	}
	return nil
}

// put records chunk n as read by transaction txid (v is copied: it points
// into the mapped file), unless its slot holds a newer commit's entry.
func (c *versionCache) put(txid, n uint64, v []byte) {
	slot := &c.slots[n%maxCachedChunks]
	var e *cachedChunk
	for {
		old := slot.Load()
		if old != nil && old.txid > txid {
			return
		}
		if e == nil {
			e = &cachedChunk{txid: txid, n: n}
			copy(e.versions[:], v)
		}
		if slot.CompareAndSwap(old, e) {
			return
		}
	}
}

// storedChunk returns the versions of chunk n as stored, or nil when they
// cannot be trusted: the chunk is missing or malformed, or its MAC failed
// at Open and still fails (a chunk rewritten since, from zeros, verifies
// again).
func (tx *Tx) storedChunk(key []byte, n uint64) []byte {
	v := tx.chunkAt(key, n)
	if len(v) != chunkSize {
		return nil
	}
	if tx.db.badChunks[n] {
		want := chunkMAC(tx.db.ix, key, v[:chunkRows*8])
		if !protectEqual(want[:], v[chunkRows*8:]) {
			return nil
		}
	}
	return v[:chunkRows*8]
}

// chunkAt returns chunk n as stored (versions ‖ MAC, or nil), from the
// tip when it holds that chunk (tip.go), else from vers.
func (tx *Tx) chunkAt(key []byte, n uint64) []byte {
	if t, v, ok := tailIn(tx.tip(), tx.mapped()); ok && t == n {
		return v
	}
	return tx.getIn(refVers, key)
}

// setVersion records row's current version (0 when the row is deleted).
// Chunks are changed in memory and written, with their MACs and the root,
// once per transaction by flushVersions: a group commit of many items in
// one chunk computes the chunk's MAC once.
func (tx *Tx) setVersion(row, version uint64) error {
	key, slot := chunkOf(row)
	n := binary.BigEndian.Uint64(key)
	c, ok := tx.dirty[n]
	if !ok {
		// A chunk that fails its MAC is rebuilt from zeros, never
		// re-signed as stored: re-signing would launder a slot an attacker
		// rolled back along with its record. Its other rows stay
		// unreadable, as they already were.
		c = make([]byte, chunkRows*8)
		copy(c, tx.storedChunk(key, n))
		if tx.dirty == nil {
			tx.dirty = map[uint64][]byte{}
		}
		tx.dirty[n] = c
	}
	binary.BigEndian.PutUint64(c[slot*8:], version)
	return nil
}

// flushVersions writes the chunks this transaction changed, with their new
// MACs, and updates the root: each chunk's old term leaves the XOR and its
// new term enters it. Chunks go in ascending order, so the highest one
// changed becomes (or stays) the tip's, and a chunk the tip held before
// moves to vers (tip.go).
func (tx *Tx) flushVersions() error {
	if len(tx.dirty) == 0 {
		return nil
	}
	vers := tx.vers()
	vers.FillPercent = appendFill
	tip, err := tx.writeTip()
	if err != nil {
		return err
	}
	root := make([]byte, protect.MACSize)
	copy(root, tip.Get(keyVRoot))
	tailN, tailV, hasTail := tailIn(tip, tx.mapped())
	ix := tx.db.ix
	for _, n := range slices.Sorted(maps.Keys(tx.dirty)) {
		versions := tx.dirty[n]
		key := binary.BigEndian.AppendUint64(nil, n)
		inTip := hasTail && n == tailN
		old := tailV
		if !inTip {
			old = vers.Get(key)
		}
		if len(old) == chunkSize {
			t := rootTerm(ix, key, old[chunkRows*8:])
			xorInto(root, t[:])
		}
		mac := chunkMAC(ix, key, versions)
		t := rootTerm(ix, key, mac[:])
		xorInto(root, t[:])
		chunk := append(append(make([]byte, 0, chunkSize), versions...), mac[:]...)
		if hasTail && n < tailN {
			if err := vers.Put(key, chunk); err != nil {
				return err
			}
			continue
		}
		if hasTail && n > tailN {
			// The tip's chunk moves to vers (a copy: tailV may point
			// into the map, which a commit can move).
			if err := vers.Put(binary.BigEndian.AppendUint64(nil, tailN), bytes.Clone(tailV)); err != nil {
				return err
			}
		}
		if !inTip && old != nil {
			if err := vers.Delete(key); err != nil {
				return err
			}
		}
		tv := binary.BigEndian.AppendUint64(make([]byte, 0, 8+chunkSize), n)
		tv = append(tv, chunk...)
		if err := tip.Put(keyVTail, tv); err != nil {
			return err
		}
		tailN, tailV, hasTail = n, tv[8:], true
	}
	tx.dirty = nil
	return tip.Put(keyVRoot, root)
}

func xorInto(dst, src []byte) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// eachChunk calls fn for every version chunk as stored: those of vers in
// key order (a malformed key or value is passed as it is), then the tip's,
// with inTip set and its number as the key. A chunk lives in one of the
// two places; one found in both is damage, for the caller to see.
func eachChunk(btx *bbolt.Tx, fn func(k, v []byte, inTip bool)) {
	c := btx.Bucket(bucketVers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		fn(k, v, false)
	}
	if n, v, ok := tailOf(btx); ok {
		fn(binary.BigEndian.AppendUint64(nil, n), v, true)
	}
}

// verifyVersions checks the version table at Open. It returns the chunks
// whose MAC fails and whether the root matches the chunks.
func verifyVersions(btx *bbolt.Tx, ix *protect.Indexer) (bad map[uint64]bool, rootOK bool) {
	bad = map[uint64]bool{}
	root := make([]byte, protect.MACSize)
	check := func(k, v []byte) {
		if len(k) != 8 || len(v) != chunkSize {
			if len(k) == 8 {
				bad[binary.BigEndian.Uint64(k)] = true
			}
			return
		}
		want := chunkMAC(ix, k, v[:chunkRows*8])
		if !protectEqual(want[:], v[chunkRows*8:]) {
			bad[binary.BigEndian.Uint64(k)] = true
		}
		t := rootTerm(ix, k, v[chunkRows*8:])
		xorInto(root, t[:])
	}
	eachChunk(btx, func(k, v []byte, _ bool) { check(k, v) })
	stored := tipOf(btx).Get(keyVRoot)
	if stored == nil {
		stored = make([]byte, protect.MACSize)
	}
	return bad, protectEqual(root, stored)
}
