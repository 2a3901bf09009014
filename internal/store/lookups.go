package store

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/secitemdb/secitemdb/protect"
)

// The lookup cache.
//
// A query that names an item's whole lookup key (service and account, for
// a generic password) finds its candidates under one posting tag, and that
// posting list nearly always holds one row or none. Resolving it costs a
// descent of the index tree and a probe of the posting log; the lookup
// cache keeps, for the tags read transactions resolved recently, the list
// they found when it held at most one row, and the commit they read it at.
//
// Correctness rests on one rule: every change to a tag's posting list is
// made by a write transaction that first records its own commit number in
// the cache's set for that tag (see changed), before that commit can be
// read. A list read at commit F is then the list at commit T too unless a
// commit between them changed it, and such a commit has left a number
// greater than min(F, T) in the set. So a reader at T uses an entry read
// at F only when the set's number is at most min(F, T); anything else is
// a miss and the reader walks the index as before. Rolled-back writers
// leave their number behind: a few extra misses, never a wrong answer.
// A wipe, which changes every list at once, replaces the table with an
// empty one that serves nothing read before the wipe's commit.
//
// The cache only ever narrows where a reader looks: the record found is
// still checked against the query (its header must list the posting and
// carry every filter's tag), exactly as on the uncached path.
//
// An entry may also hold the row's version, which a read checks against
// the record's (the version table, versions.go). That rule does not cover
// it: it is about lists, and nothing ties a change of version to a change
// of list (today every write that changes a version also unposts and
// reposts the row's lookup posting, but that is the writers' business). So a
// version serves only readers of the very commit at which it was read from
// the table, whose content at that commit never changes (as for the
// version cache); a reader of a later commit uses the list, reads the
// version as before, and writes the entry again at its own commit with
// that version. A read of a cached row then costs no version lookup while
// no commit intervenes.
//
// Layout: sets of lookupWays entries, chosen by the tag's bits (tags are
// keyed hashes, so uniform); each entry is guarded by a sequence counter
// (odd while an entry is being written), so readers take no lock. The
// table holds two entries per item or more, between minLookupSlots and the
// handle's limit (DefaultLookupCacheEntries unless Options says
// otherwise; 44 bytes an entry, set overhead included), and is replaced
// by a larger one as the store grows. A limit below zero turns the cache
// off: no table, every lookup walks the index.

const (
	lookupWays     = 4
	minLookupSlots = 1 << 10
	// DefaultLookupCacheEntries is the lookup cache's default limit:
	// 2^20 entries, 46 MB, the table a store of up to half a million
	// items calls for (until Run 9 of BENCHMARKS.md it was 2^18, which
	// left a million-item store's reads 27 % slower).
	DefaultLookupCacheEntries = 1 << 20
	// MaxLookupCacheEntries is the largest limit Options may set: 2^24
	// entries, 738 MB.
	MaxLookupCacheEntries = 1 << 24
	// lookupEntryBytes is the memory an entry takes, its share of its
	// set's fields included.
	lookupEntryBytes = int(unsafe.Sizeof(lookupSet{})) / lookupWays
)

type lookupEntry struct {
	seq  atomic.Uint64 // odd while the entry is being written
	tag0 atomic.Uint64 // tag bytes 0–7
	tag1 atomic.Uint64 // tag bytes 8–11; bit 32: the list holds a row; bits 33–63: its version
	row  atomic.Uint64
	at   atomic.Uint64 // the commit the list was read at
}

type lookupSet struct {
	changed atomic.Uint64 // the last commit that changed a list of a tag of this set
	hand    atomic.Uint32 // the next entry to replace
	entries [lookupWays]lookupEntry
}

type lookupTable struct {
	// since is the first commit whose changes the table records: an
	// entry serves only readers and lists at or after it.
	since uint64
	mask  uint64
	sets  []lookupSet
}

type lookupCache struct {
	table atomic.Pointer[lookupTable]
	// limit is the most entries a table may have: a power of two, at
	// least lookupWays, or 0 when the cache is off. Set at Open.
	limit int
}

// lookupLimit turns Options.LookupCacheEntries into a table limit: 0
// means the default, a negative number turns the cache off, anything
// else is rounded up to a power of two within [lookupWays,
// MaxLookupCacheEntries] (up, so that a limit of the item count gets the
// table the item count would: entries go in sets of four, so a table of
// as many entries as items holds about 80 % of their keys at once, one of
// twice as many about 96 %).
func lookupLimit(entries int) int {
	switch {
	case entries < 0:
		return 0
	case entries == 0:
		return DefaultLookupCacheEntries
	}
	entries = min(max(entries, lookupWays), MaxLookupCacheEntries)
	return 1 << bits.Len(uint(entries-1))
}

// slots returns the table size for a store of rows items: the power of
// two that gives every item two entries or more, at least
// minLookupSlots, at most the limit.
func (c *lookupCache) slots(rows uint64) int {
	switch {
	case rows >= uint64(c.limit)/2: // rows is the stored row sequence: not trusted
		return c.limit
	case rows <= minLookupSlots/2:
		return min(minLookupSlots, c.limit)
	}
	return 1 << bits.Len64(2*rows-1)
}

// reset installs an empty table sized for rows, recording changes from
// commit since on. Only a writer (or Open, before any reader) may call it:
// changes made before since are not recorded in the new table.
func (c *lookupCache) reset(rows, since uint64) {
	if c.limit == 0 {
		return
	}
	n := c.slots(rows) / lookupWays
	c.table.Store(&lookupTable{since: since, mask: uint64(n - 1), sets: make([]lookupSet, n)})
}

// grow replaces the table by a larger one when the store has outgrown it;
// called by a writer, whose commit is since, before it changes anything.
func (c *lookupCache) grow(rows, since uint64) {
	t := c.table.Load()
	if c.limit > 0 && (t == nil || c.slots(rows) > len(t.sets)*lookupWays) {
		c.reset(rows, since)
	}
}

// stats returns the current table's size in entries and bytes and how
// many of its entries were written since it was made (some may no longer
// be usable: a later commit changed their list). Entries being written
// are not counted; the count is a snapshot of a table readers keep
// changing.
func (c *lookupCache) stats() (entries int, bytes int64, filled int) {
	t := c.table.Load()
	if t == nil {
		return 0, 0, 0
	}
	for i := range t.sets {
		for j := range t.sets[i].entries {
			if q := t.sets[i].entries[j].seq.Load(); q != 0 && q&1 == 0 {
				filled++
			}
		}
	}
	entries = len(t.sets) * lookupWays
	return entries, int64(entries * lookupEntryBytes), filled
}

func tagWords(t protect.Tag) (w0, w1 uint64) {
	return binary.LittleEndian.Uint64(t[0:8]), uint64(binary.LittleEndian.Uint32(t[8:12]))
}

func (t *lookupTable) set(tag protect.Tag) *lookupSet {
	return &t.sets[binary.LittleEndian.Uint64(tag[4:12])&t.mask]
}

// The second tag word holds more than the tag's bytes 8–11 (its low 32
// bits): bit 32 says the list holds a row, and bits 33–63 the row's
// version as the reader that wrote the entry found it in the version
// table at the entry's commit (0: not known, or too large to keep here).
const (
	lookupTagBits  = 1<<32 - 1
	lookupHasRow   = 1 << 32
	lookupVerShift = 33
	lookupMaxVer   = 1<<(64-lookupVerShift) - 1
)

// lookupHit is what the cache answers for a tag: its list, and the row's
// version when the entry was written at the reader's own commit.
type lookupHit struct {
	row uint64
	n   int // rows in the list: 0 or 1
	// version is the row's version at the reader's commit (0: not
	// known). A version is kept only with the commit it was read at: the
	// version table of a given commit never changes, while the rule that
	// keeps lists right says nothing of versions, so only a reader of
	// exactly that commit may use it.
	version uint64
	// refresh is set when the entry holds no version for the reader's
	// commit (it was written at an earlier one, or without a version):
	// writing it again with the version the reader finds serves the
	// readers of this commit that follow.
	refresh bool
}

// probe returns tag's posting list as a reader of commit txid sees it
// (one row or none) and, for a reader of the entry's own commit, the
// row's version; ok is false on a miss.
func (c *lookupCache) probe(tag protect.Tag, txid uint64) (lookupHit, bool) {
	t := c.table.Load()
	if t == nil {
		return lookupHit{}, false
	}
	s := t.set(tag)
	w0, w1 := tagWords(tag)
	for i := range s.entries {
		e := &s.entries[i]
		q := e.seq.Load()
		if q == 0 || q&1 != 0 {
			continue
		}
		t0, t1, r, at := e.tag0.Load(), e.tag1.Load(), e.row.Load(), e.at.Load()
		if e.seq.Load() != q || t0 != w0 || t1&lookupTagBits != w1 {
			continue
		}
		// Loaded after the entry: a change the entry's reader could have
		// seen is visible here (see the rule above).
		lo := min(at, txid)
		if lo < t.since || s.changed.Load() > lo {
			return lookupHit{}, false
		}
		if t1&lookupHasRow == 0 {
			return lookupHit{}, true
		}
		h := lookupHit{row: r, n: 1, refresh: at < txid}
		if at == txid {
			h.version = t1 >> lookupVerShift
			h.refresh = h.version == 0
		}
		return h, true
	}
	return lookupHit{}, false
}

// store records that tag's posting list at commit txid holds row (n = 1)
// or nothing (n = 0), with row's version at commit txid when it is known
// (0 otherwise; one too large for the entry's bits is not kept). It gives
// up rather than wait when another reader is writing the entry it would
// replace.
func (c *lookupCache) store(tag protect.Tag, txid, row uint64, n int, version uint64) {
	t := c.table.Load()
	if t == nil || txid < t.since {
		return
	}
	s := t.set(tag)
	w0, w1 := tagWords(tag)
	if n == 1 {
		w1 |= lookupHasRow
		if version <= lookupMaxVer {
			w1 |= version << lookupVerShift
		}
	}
	victim := -1
	for i := range s.entries {
		e := &s.entries[i]
		if q := e.seq.Load(); q == 0 || (e.tag0.Load() == w0 && e.tag1.Load()&lookupTagBits == w1&lookupTagBits) {
			victim = i
			break
		}
	}
	if victim < 0 {
		victim = int(s.hand.Add(1) % lookupWays)
	}
	e := &s.entries[victim]
	q := e.seq.Load()
	if q&1 != 0 || !e.seq.CompareAndSwap(q, q+1) {
		return
	}
	e.tag0.Store(w0)
	e.tag1.Store(w1)
	e.row.Store(row)
	e.at.Store(txid)
	e.seq.Store(q + 2)
}

// changed records that commit txid changes tag's posting list. It must
// run before that commit can be read, so in the write transaction.
func (c *lookupCache) changed(tag protect.Tag, txid uint64) {
	if t := c.table.Load(); t != nil {
		raiseTo(&t.set(tag).changed, txid)
	}
}

func raiseTo(v *atomic.Uint64, x uint64) {
	for {
		old := v.Load()
		if old >= x || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// findPosted calls fn with the rows posted under tag, from row 1 on, as
// intersect would, using and filling the lookup cache (read transactions
// only: a writer sees its own uncommitted changes).
func (tx *Tx) findPosted(tag protect.Tag, fn func(row uint64) (bool, error)) error {
	c := &tx.db.lookups
	txid := tx.txid()
	if h, ok := c.probe(tag, txid); ok {
		if h.n == 0 {
			return nil
		}
		if h.version != 0 {
			// The version check of a read of this row (Read) needs no
			// trip to the version table or its cache.
			tx.verOK, tx.verRow, tx.verVal = true, h.row, h.version
		}
		_, err := fn(h.row)
		if h.refresh {
			if v := tx.versionRead(h.row); v != 0 && v <= lookupMaxVer {
				// fn read the row's version at this commit: keep it
				// with the list for the readers that follow.
				c.store(tag, txid, h.row, 1, v)
			}
		}
		return err
	}
	cur := tx.postingCursor(tag[:])
	defer tx.releaseCursor(cur)
	seek := &tx.seekBuf
	copy(seek[:], tag[:])
	binary.BigEndian.PutUint64(seek[tagSize:], 1)
	var first uint64
	n := 0
	for k, _ := cur.Seek(seek[:]); len(k) == tagSize+8 && bytes.HasPrefix(k, tag[:]); k, _ = cur.Next() {
		row := binary.BigEndian.Uint64(k[tagSize:])
		n++
		if n == 1 {
			first = row
		}
		more, err := fn(row)
		if err != nil {
			return err
		}
		if !more {
			if n == 1 && lastInTag(cur, tag) {
				c.store(tag, txid, first, 1, tx.versionRead(first))
			}
			return nil
		}
	}
	if n <= 1 {
		c.store(tag, txid, first, n, tx.versionRead(first))
	}
	return nil
}

// lastInTag reports whether cur, on a posting of tag, is on the tag's
// last one. The step the uncached walk would not have taken may land on a
// damaged page: a panic there means "not known" (nothing is cached), and
// the caller keeps the answer it already has.
func lastInTag(cur seeker, tag protect.Tag) (last bool) {
	defer func() {
		if recover() != nil {
			last = false
		}
	}()
	k, _ := cur.Next()
	return len(k) != tagSize+8 || !bytes.HasPrefix(k, tag[:])
}
