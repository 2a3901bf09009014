package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/protect"
)

// The posting log.
//
// An item owns three or more postings (its lookup key, its indexed
// attributes), and their tags are keyed hashes: each lands on its own
// random page of the index. Putting them there at once made one Add dirty
// fourteen pages and a group of 64 Adds 141, where the records alone take
// one or two. New postings therefore go to a log first: each commit
// appends its posting changes to the log (the tip's tail, which goes to
// the end of bucket "plog" as one value every few commits: tip.go), and
// an in-memory table of the logged postings, rebuilt from the log at
// Open, answers lookups beside the index. When the log holds more than a
// share of the store's rows (mergeLimit), the commit that finds it so
// writes the logged postings of one sixteenth of the tag space into the
// index in key order (each index page is then rewritten once for many
// postings; see mergeSlice), and log values go once every slice has
// merged them.
//
// Bucket "plog": sequence (8 bytes big-endian) → one commit's operations,
// each op (1 byte: '+' posted, '-' removed) ‖ tag (12) ‖ row (8).
// A posting is removed from wherever it is: from the log when the log
// holds it, from the index otherwise.
//
// The table is shared by every transaction, so each entry carries the
// commit that logged it and the commit from which it is no longer in the
// log (removed, or merged into the index): a reader of commit T sees the
// entries with add ≤ T < end, exactly the log as of T, and the index of
// commit T has the merged ones. Ended entries are dropped once no reader
// older than their end is left (readerSet). A write transaction stamps its
// changes with its own ID and takes them back if it rolls back.

var bucketPlog = []byte("plog")

const (
	logOpSize = 1 + tagSize + 8
	opPost    = '+'
	opUnpost  = '-'
	never     = ^uint64(0)
)

// Merge bounds, in logged postings: the log is merged into the index when
// it holds more than a quarter of the rows handed out, within these.
var (
	minMerge = 8192
	maxMerge = 1 << 18
)

// SetMergeLimits sets the bounds, in logged postings, between which the
// posting log is merged into the index (a quarter of the rows handed out,
// clamped to [lo, hi]), and returns a function restoring the previous
// ones. It is for tests, which make merges frequent; it must not be called
// while a store is open.
func SetMergeLimits(lo, hi int) (restore func()) {
	oldLo, oldHi := minMerge, maxMerge
	minMerge, maxMerge = lo, hi
	return func() { minMerge, maxMerge = oldLo, oldHi }
}

// The tag space is merged one slice at a time (by a tag's first byte), so
// one commit rewrites a sixteenth of the index, not all of it. Meta key
// "plog-marks" holds, per slice, the last log sequence whose operations on
// that slice's tags are in the index; a log value goes once every slice's
// mark has passed it.
const logSlices = 16

var keyLogMarks = []byte("plog-marks")

func sliceOf(t protect.Tag) int { return int(t[0]) * logSlices / 256 }

// readMarks returns the slices' merge marks (zeros when missing or
// malformed: the whole log is replayed, and a posting both in the index
// and in the table is seen once).
func readMarks(meta *bbolt.Bucket) (marks [logSlices]uint64) {
	if v := meta.Get(keyLogMarks); len(v) == logSlices*8 {
		for s := range marks {
			marks[s] = binary.BigEndian.Uint64(v[s*8:])
		}
	}
	return marks
}

func writeMarks(meta *bbolt.Bucket, marks [logSlices]uint64) error {
	v := make([]byte, 0, logSlices*8)
	for _, m := range marks {
		v = binary.BigEndian.AppendUint64(v, m)
	}
	return meta.Put(keyLogMarks, v)
}

// mergeLimit is the number of live logged postings that triggers a merge
// for a store that has handed out rows row numbers.
func mergeLimit(rows uint64) int {
	n := int(min(rows/4, uint64(maxMerge)))
	return max(n, minMerge)
}

// logEntry is one logged posting of a tag.
type logEntry struct {
	row uint64
	add uint64 // the commit that logged it (0: logged before Open)
	end uint64 // the commit from which it is out of the log; never while it is in
}

// postingLog is the in-memory table of the logged postings.
type postingLog struct {
	mu   sync.RWMutex
	tags logTable
	live int // entries with end == never

	ended     map[protect.Tag]struct{} // tags holding ended entries
	oldestEnd uint64                   // the smallest end among them (never: none)

	damaged []uint64 // the sequences of log values that did not parse at Open (see Check)
}

// logTable holds the logged entries of each tag, in ascending rows, in
// one map per merge slice: a merge walks its own slice's tags only, not
// the whole log's.
type logTable [logSlices]map[protect.Tag][]logEntry

func (lt *logTable) get(t protect.Tag) []logEntry { return lt[sliceOf(t)][t] }

func (lt *logTable) set(t protect.Tag, es []logEntry) { lt[sliceOf(t)][t] = es }

func (lt *logTable) del(t protect.Tag) { delete(lt[sliceOf(t)], t) }

// len returns the number of tags in the table.
func (lt *logTable) len() int {
	n := 0
	for _, m := range lt {
		n += len(m)
	}
	return n
}

// all yields every tag with its entries, slice by slice.
func (lt *logTable) all(yield func(protect.Tag, []logEntry) bool) {
	for _, m := range lt {
		for t, es := range m {
			if !yield(t, es) {
				return
			}
		}
	}
}

// reset empties the table.
func (l *postingLog) reset() {
	for i := range l.tags {
		l.tags[i] = map[protect.Tag][]logEntry{}
	}
	l.ended = map[protect.Tag]struct{}{}
	l.live, l.oldestEnd, l.damaged = 0, never, nil
}

// load rebuilds the table from the log of btx's commit, leaving out each
// slice's operations up to its merge mark (they are in the index). A log
// whose pages bbolt cannot walk keeps what was read before the damage and
// counts as one damaged value: the store still opens, lookups miss the
// lost postings, and Check reports them.
func (l *postingLog) load(btx *bbolt.Tx) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reset()
	defer func() {
		if recover() != nil {
			l.damaged = append(l.damaged, never)
		}
	}()
	marks := readMarks(btx.Bucket(bucketMeta))
	var last uint64 // the log's sequence
	if b := btx.Bucket(bucketPlog); b != nil {
		last = b.Sequence()
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			seq := never // a malformed key: replayed whole
			if len(k) == 8 {
				seq = binary.BigEndian.Uint64(k)
			}
			l.replay(btx, seq, v, &marks)
		}
	}
	// The tip's tail is the value the log takes next (tip.go).
	if tip := btx.Bucket(bucketTip); tip != nil {
		if v := tip.Get(keyLogTail); v != nil {
			l.replay(btx, last+1, v, &marks)
		}
	}
}

// replay applies log value v of sequence seq to the table, leaving out
// the operations of slices merged past seq. A value that does not parse is
// skipped whole (none of its operations is believed) and counted.
func (l *postingLog) replay(btx *bbolt.Tx, seq uint64, v []byte, marks *[logSlices]uint64) {
	if !fitsFile(btx, v) || !wellFormed(v) {
		l.damaged = append(l.damaged, seq)
		return
	}
	for ; len(v) > 0; v = v[logOpSize:] {
		var t protect.Tag
		copy(t[:], v[1:])
		if seq <= marks[sliceOf(t)] {
			continue
		}
		row := binary.BigEndian.Uint64(v[1+tagSize:])
		switch v[0] {
		case opPost:
			if l.find(t, row) < 0 {
				l.insert(t, logEntry{row: row, end: never})
				l.live++
			}
		case opUnpost:
			if l.find(t, row) >= 0 {
				l.filter(t, func(e *logEntry) bool { return e.row != row || e.end != never })
				l.live--
			}
		}
	}
}

// wellFormed reports whether v is a log value: whole operations, each
// '+' or '-'.
func wellFormed(v []byte) bool {
	if len(v)%logOpSize != 0 {
		return false
	}
	for ; len(v) > 0; v = v[logOpSize:] {
		if v[0] != opPost && v[0] != opUnpost {
			return false
		}
	}
	return true
}

// find returns the index of the live entry of (t, row), or -1.
func (l *postingLog) find(t protect.Tag, row uint64) int {
	es := l.tags.get(t)
	for i := sort.Search(len(es), func(i int) bool { return es[i].row >= row }); i < len(es) && es[i].row == row; i++ {
		if es[i].end == never {
			return i
		}
	}
	return -1
}

// insert adds e after the entries of t with rows up to e.row.
func (l *postingLog) insert(t protect.Tag, e logEntry) {
	es := l.tags.get(t)
	i := sort.Search(len(es), func(i int) bool { return es[i].row > e.row })
	l.tags.set(t, slices.Insert(es, i, e))
}

// filter keeps the entries of t for which keep (which may change them)
// returns true, in place.
func (l *postingLog) filter(t protect.Tag, keep func(*logEntry) bool) {
	es := l.tags.get(t)
	kept := es[:0]
	for i := range es {
		if e := es[i]; keep(&e) {
			kept = append(kept, e)
		}
	}
	clear(es[len(kept):])
	if len(kept) == 0 {
		l.tags.del(t)
	} else {
		l.tags.set(t, kept)
	}
}

// noteEnded records that t holds an entry ended at txid.
func (l *postingLog) noteEnded(t protect.Tag, txid uint64) {
	l.ended[t] = struct{}{}
	l.oldestEnd = min(l.oldestEnd, txid)
}

// rowsFrom appends to dst (up to its capacity) the rows from row from on
// that tag t has in the log as commit txid sees it, in ascending order; more
// reports that rows may remain beyond those.
func (l *postingLog) rowsFrom(t protect.Tag, txid, from uint64, dst []uint64) (rows []uint64, more bool) {
	l.mu.RLock()
	es := l.tags.get(t)
	i := 0
	if len(es) > 8 {
		i = sort.Search(len(es), func(i int) bool { return es[i].row >= from })
	}
	for ; i < len(es); i++ {
		e := &es[i]
		if e.row < from || e.add > txid || txid >= e.end {
			continue
		}
		if n := len(dst); n > 0 && dst[n-1] == e.row {
			continue
		}
		if len(dst) == cap(dst) {
			more = true
			break
		}
		dst = append(dst, e.row)
	}
	l.mu.RUnlock()
	return dst, more
}

// holds reports whether the log as commit txid sees it has (t, row).
func (l *postingLog) holds(t protect.Tag, row, txid uint64) bool {
	var buf [1]uint64
	rows, _ := l.rowsFrom(t, txid, row, buf[:0])
	return len(rows) == 1 && rows[0] == row
}

// each calls fn for every posting in the log as commit txid sees it.
func (l *postingLog) each(txid uint64, fn func(t protect.Tag, row uint64)) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for t, es := range l.tags.all {
		for _, e := range es {
			if e.add <= txid && txid < e.end {
				fn(t, e.row)
			}
		}
	}
}

// Damaged returns the number of log values still in the log that did not
// parse at Open.
func (l *postingLog) Damaged() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.damaged)
}

// readerSet tracks the read transactions in progress, each by a commit no
// newer than the one it reads: ended log entries older than all of them
// can go. A reader takes a free slot of a fixed array with one atomic
// compare-and-swap (no lock shared by every read, so reads on many cores
// do not queue on it); the slots are a cache line apart; a reader that
// finds every slot taken falls back to a map under a mutex. A writer's
// oldest scans both. A registration the scan misses began after it, so
// its reader reads a commit no older than the one before the writer's:
// nothing it can see is collected.
type readerSet struct {
	slots [readerSlots]struct {
		since atomic.Uint64 // since+1; 0: free
		_     [56]byte
	}
	mu       sync.Mutex
	overflow map[uint64]int
}

const readerSlots = 64

// readerHandle is a registration, for leave.
type readerHandle struct {
	slot  int // -1: in the overflow map
	since uint64
}

func (s *readerSet) enter(since uint64) readerHandle {
	start := int(rand.Uint32() % readerSlots)
	for i := range readerSlots {
		j := (start + i) % readerSlots
		if sl := &s.slots[j].since; sl.Load() == 0 && sl.CompareAndSwap(0, since+1) {
			return readerHandle{slot: j, since: since}
		}
	}
	s.mu.Lock()
	if s.overflow == nil {
		s.overflow = map[uint64]int{}
	}
	s.overflow[since]++
	s.mu.Unlock()
	return readerHandle{slot: -1, since: since}
}

func (s *readerSet) leave(h readerHandle) {
	if h.slot >= 0 {
		s.slots[h.slot].since.Store(0)
		return
	}
	s.mu.Lock()
	if s.overflow[h.since] <= 1 {
		delete(s.overflow, h.since)
	} else {
		s.overflow[h.since]--
	}
	s.mu.Unlock()
}

// oldest returns the oldest commit a reader in progress may read, or
// limit when there is none older.
func (s *readerSet) oldest(limit uint64) uint64 {
	for i := range s.slots {
		if v := s.slots[i].since.Load(); v != 0 {
			limit = min(limit, v-1)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t := range s.overflow {
		limit = min(limit, t)
	}
	return limit
}

// Transactions and the log.

// txid returns the transaction's commit: the one it reads, or for a write
// transaction the one it will make.
func (tx *Tx) txid() uint64 { return uint64(tx.btx.ID()) }

// touchLog records that the transaction changed t's entries.
func (tx *Tx) touchLog(t protect.Tag) {
	if tx.logTags == nil {
		tx.logTags = map[protect.Tag]struct{}{}
	}
	tx.logTags[t] = struct{}{}
}

// post adds the posting (t, row) to the log.
func (tx *Tx) post(t protect.Tag, row uint64) {
	l := &tx.db.plog
	l.mu.Lock()
	l.insert(t, logEntry{row: row, add: tx.txid(), end: never})
	l.live++
	l.mu.Unlock()
	tx.logLive++
	tx.touchLog(t)
	tx.db.lookups.changed(t, tx.txid())
	tx.logOps = appendLogOp(tx.logOps, opPost, t, row)
}

// unpost removes the posting (t, row): from the log when it is there,
// from the index otherwise.
func (tx *Tx) unpost(t protect.Tag, row uint64) error {
	if tx.endLogged(t, row) {
		return nil
	}
	tx.db.lookups.changed(t, tx.txid())
	key := make([]byte, tagSize+8)
	copy(key, t[:])
	binary.BigEndian.PutUint64(key[tagSize:], row)
	return tx.indexForWrite().Delete(key)
}

// endLogged ends the live log entry of (t, row), if there is one.
func (tx *Tx) endLogged(t protect.Tag, row uint64) bool {
	l := &tx.db.plog
	w := tx.txid()
	l.mu.Lock()
	i := l.find(t, row)
	if i >= 0 {
		l.tags.get(t)[i].end = w
		l.live--
		l.noteEnded(t, w)
	}
	l.mu.Unlock()
	if i < 0 {
		return false
	}
	tx.logLive--
	tx.touchLog(t)
	tx.db.lookups.changed(t, tx.txid())
	tx.logOps = appendLogOp(tx.logOps, opUnpost, t, row)
	return true
}

// unpostRow removes every logged posting of row (see removeAllPostings).
func (tx *Tx) unpostRow(row uint64) {
	var dead []protect.Tag
	tx.db.plog.each(tx.txid(), func(t protect.Tag, r uint64) {
		if r == row {
			dead = append(dead, t)
		}
	})
	for _, t := range dead {
		tx.endLogged(t, row)
	}
}

func appendLogOp(b []byte, op byte, t protect.Tag, row uint64) []byte {
	b = append(b, op)
	b = append(b, t[:]...)
	return binary.BigEndian.AppendUint64(b, row)
}

// flushLog runs before a write transaction commits: it appends this
// transaction's operations to the log and, while the log is past its
// limit, merges the slice merged longest ago into the index (one slice
// for an ordinary commit; as many as it takes after a large one, such as
// a restore, so the table stays bounded); then it drops the ended entries
// no reader needs.
func (tx *Tx) flushLog() error {
	if len(tx.logOps) > 0 {
		if err := tx.logToTip(tx.logOps, false); err != nil {
			return err
		}
		tx.logOps = nil
	}
	l := &tx.db.plog
	limit := mergeLimit(tx.db.rows.Load())
	for range logSlices {
		l.mu.RLock()
		live := l.live
		l.mu.RUnlock()
		if live <= limit {
			break
		}
		if err := tx.mergeSlice(); err != nil {
			return err
		}
	}
	tx.collectLog()
	return nil
}

// logToTip adds ops to the log's tail in the tip (tip.go). When the tail
// would outgrow its share of the tip, or when flush is set (before a
// merge), tail and ops go to the log's bucket as one value instead and the
// tail empties. A tail that did not parse at Open was never believed and
// is dropped, and no longer counted as damaged.
func (tx *Tx) logToTip(ops []byte, flush bool) error {
	tip, err := tx.writeTip()
	if err != nil {
		return err
	}
	tail := tip.Get(keyLogTail)
	if !fitsFile(tx.btx, tail) || !wellFormed(tail) {
		// Counted as damaged at Open under the sequence it would have
		// taken (load), which the log's bucket still has next: the count
		// goes with it.
		next := uint64(1)
		if b := tx.btx.Bucket(bucketPlog); b != nil {
			next = b.Sequence() + 1
		}
		tx.forgetDamaged(func(seq uint64) bool { return seq == next })
		tail = nil
	}
	v := append(slices.Clone(tail), ops...)
	if !flush && len(v) <= maxLogTail {
		return tip.Put(keyLogTail, v)
	}
	if len(v) > 0 {
		if err := tx.appendLog(v); err != nil {
			return err
		}
	}
	return tip.Delete(keyLogTail) // no change when there is none
}

// appendLog appends v to the log as its next value.
func (tx *Tx) appendLog(v []byte) error {
	b, err := tx.logBucket()
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), v)
}

// mergeSlice writes the logged postings of the slice merged longest ago
// into the index, in key order, marks the slice merged through the log's
// last value, and deletes the log values every slice has now merged.
func (tx *Tx) mergeSlice() error {
	// The slice is marked merged through the log's last value, so the
	// tail must be one of the log's values first.
	if err := tx.logToTip(nil, true); err != nil {
		return err
	}
	meta := tx.btx.Bucket(bucketMeta)
	marks := readMarks(meta)
	s := 0
	for i := range marks {
		if marks[i] < marks[s] {
			s = i
		}
	}
	b, err := tx.logBucket()
	if err != nil {
		return err
	}
	if err := tx.putMerged(s); err != nil {
		return err
	}
	marks[s] = b.Sequence()
	if err := writeMarks(meta, marks); err != nil {
		return err
	}
	done := slices.Min(marks[:])
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(k) == 8 && binary.BigEndian.Uint64(k) <= done; k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	tx.forgetDamaged(func(seq uint64) bool { return seq <= done })
	return nil
}

// putMerged ends the live entries of merge slice s (allSlices: every
// slice) and writes them into the index, in key order.
func (tx *Tx) putMerged(s int) error {
	var keys []postingKey
	tx.endAll(s, func(t protect.Tag, row uint64) {
		var k postingKey
		copy(k[:], t[:])
		binary.BigEndian.PutUint64(k[tagSize:], row)
		keys = append(keys, k)
	})
	slices.SortFunc(keys, comparePostingKeys)
	idx := tx.indexForWrite()
	for i := range keys {
		if err := idx.Put(keys[i][:], nil); err != nil {
			return err
		}
	}
	return nil
}

// forgetDamaged drops the damaged values gone from the log (those for
// which gone is true), keeping the list for a rollback.
func (tx *Tx) forgetDamaged(gone func(seq uint64) bool) {
	l := &tx.db.plog
	l.mu.Lock()
	if !tx.logEmptied {
		tx.logEmptied, tx.logDamagedWas = true, slices.Clone(l.damaged)
	}
	l.damaged = slices.DeleteFunc(l.damaged, gone)
	l.mu.Unlock()
}

// logBucket returns the log's bucket, creating it in a store of format 1.
// The format number is not this function's business: every commit writes
// the tip, and the first to write it sets the current format (writeTip).
func (tx *Tx) logBucket() (*bbolt.Bucket, error) {
	b, err := tx.btx.CreateBucketIfNotExists(bucketPlog)
	if err != nil {
		return nil, err
	}
	b.FillPercent = appendFill
	return b, nil
}

// mergeLog writes every posting in the log into the index, in key order,
// and empties the log (tests and the bench use it; commits merge a slice
// at a time).
func (tx *Tx) mergeLog() error {
	if err := tx.putMerged(allSlices); err != nil {
		return err
	}
	return tx.emptyLog()
}

// emptyLog replaces the log's bucket with an empty one, whose sequence
// starts again, so the merge marks go too (and the damaged values the old
// log had).
func (tx *Tx) emptyLog() error {
	tx.forgetDamaged(func(uint64) bool { return true })
	if tx.btx.Bucket(bucketPlog) != nil {
		if err := tx.btx.DeleteBucket(bucketPlog); err != nil {
			return err
		}
	}
	if err := tx.btx.Bucket(bucketMeta).Delete(keyLogMarks); err != nil {
		return err
	}
	tip, err := tx.writeTip()
	if err != nil {
		return err
	}
	if err := tip.Delete(keyLogTail); err != nil {
		return err
	}
	tx.logOps = nil
	_, err = tx.logBucket()
	return err
}

// postingKey is an index key: a tag and a row (8 bytes big-endian).
type postingKey [tagSize + 8]byte

// comparePostingKeys orders keys as bytes.Compare does: by tag
// (compareTags, a word at a time), then by row (a merge sorts thousands of
// them; bytes.Compare through a closure was a third of its cost).
func comparePostingKeys(a, b postingKey) int {
	if c := compareTags(protect.Tag(a[:tagSize]), protect.Tag(b[:tagSize])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[tagSize:]), binary.BigEndian.Uint64(b[tagSize:]))
}

// allSlices stands for every merge slice.
const allSlices = -1

// dropLog ends every entry of the log and empties it (a wipe).
func (tx *Tx) dropLog() error {
	tx.endAll(allSlices, nil)
	return tx.emptyLog()
}

// endAll ends, at this transaction, every live entry of the log in merge
// slice s (allSlices: in every slice), calling fn (when not nil) with
// each.
func (tx *Tx) endAll(s int, fn func(t protect.Tag, row uint64)) {
	l := &tx.db.plog
	w := tx.txid()
	n := 0
	l.mu.Lock()
	for i, m := range l.tags {
		if s != allSlices && i != s {
			continue
		}
		n += l.endIn(m, w, fn)
	}
	l.live -= n
	l.mu.Unlock()
	tx.logLive -= n
	tx.logAll = true
}

// endIn ends, at commit w, every live entry of the tags in m, calling fn
// (when not nil) with each, and returns how many it ended.
func (l *postingLog) endIn(m map[protect.Tag][]logEntry, w uint64, fn func(t protect.Tag, row uint64)) int {
	n := 0
	for t, es := range m {
		for i := range es {
			if es[i].end != never {
				continue
			}
			if fn != nil {
				fn(t, es[i].row)
			}
			es[i].end = w
			l.noteEnded(t, w)
			n++
		}
	}
	return n
}

// collectLog drops the ended entries that no reader can see any more:
// those ended at or before the oldest commit a reader in progress reads
// (never this transaction's own: they are not committed yet).
func (tx *Tx) collectLog() {
	l := &tx.db.plog
	floor := tx.db.readers.oldest(tx.txid() - 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.oldestEnd > floor {
		return
	}
	next := never
	for t := range l.ended {
		ended := false
		l.filter(t, func(e *logEntry) bool {
			if e.end <= floor {
				return false
			}
			if e.end != never {
				ended = true
				next = min(next, e.end)
			}
			return true
		})
		if !ended {
			delete(l.ended, t)
		}
	}
	l.oldestEnd = next
}

// undoLog takes back a rolled-back transaction's changes to the table.
func (tx *Tx) undoLog() {
	if tx.logTags == nil && !tx.logAll {
		return
	}
	l := &tx.db.plog
	w := tx.txid()
	l.mu.Lock()
	undo := func(t protect.Tag) {
		l.filter(t, func(e *logEntry) bool {
			if e.end == w {
				e.end = never
			}
			return e.add != w
		})
	}
	if tx.logAll {
		for t := range l.tags.all {
			undo(t) // deleting what it iterates over is allowed for maps
		}
	} else {
		for t := range tx.logTags {
			undo(t)
		}
	}
	l.live -= tx.logLive
	if tx.logEmptied {
		l.damaged = tx.logDamagedWas
	}
	l.mu.Unlock()
	tx.logTags, tx.logAll, tx.logLive, tx.logOps = nil, false, 0, nil
	tx.logEmptied, tx.logDamagedWas = false, nil
}

// Posting cursors.

// postingCursor returns a cursor over the postings of tag (the index's
// and the log's, as this transaction sees them), to give back with
// releaseCursor. Keys outside tag end it.
func (tx *Tx) postingCursor(tag []byte) seeker {
	s := &tx.ls
	if tx.lsBusy {
		s = new(logSeeker)
	} else {
		tx.lsBusy = true
	}
	*s = logSeeker{tx: tx, main: tx.indexCursor(), txid: tx.txid()}
	copy(s.tag[:], tag)
	return s
}

// logSeeker steps through one tag's postings in the index and in the log
// together, in row order.
type logSeeker struct {
	tx   *Tx
	main seeker
	tag  protect.Tag
	txid uint64

	mk   []byte   // the index's current key, nil past the tag
	rows []uint64 // the log's rows not yet passed
	more bool     // the log may hold rows after rows
	src  uint8    // where the last key came from (srcMain|srcLog)
	buf  [32]uint64
	key  [tagSize + 8]byte
}

const (
	srcMain = 1 << iota
	srcLog
)

// Seek moves to the first posting at or after k.
func (s *logSeeker) Seek(k []byte) ([]byte, []byte) {
	mk, _ := s.main.Seek(k)
	s.mk = s.inTag(mk)
	var from uint64
	if len(k) == tagSize+8 {
		from = binary.BigEndian.Uint64(k[tagSize:])
	}
	s.rows, s.more = s.tx.db.plog.rowsFrom(s.tag, s.txid, from, s.buf[:0])
	return s.pick()
}

// Next moves to the next posting.
func (s *logSeeker) Next() ([]byte, []byte) {
	if s.src&srcMain != 0 {
		mk, _ := s.main.Next()
		s.mk = s.inTag(mk)
	}
	if s.src&srcLog != 0 {
		last := s.rows[0]
		s.rows = s.rows[1:]
		if len(s.rows) == 0 && s.more && last != never {
			s.rows, s.more = s.tx.db.plog.rowsFrom(s.tag, s.txid, last+1, s.buf[:0])
		}
	}
	return s.pick()
}

// inTag returns k when it is a posting of the tag, stepping over malformed
// keys of it; nil once past it.
func (s *logSeeker) inTag(k []byte) []byte {
	for ; k != nil && bytes.HasPrefix(k, s.tag[:]); k, _ = s.main.Next() {
		if len(k) == tagSize+8 {
			return k
		}
	}
	return nil
}

func (s *logSeeker) pick() ([]byte, []byte) {
	s.src = 0
	if s.mk != nil {
		s.src = srcMain
		if len(s.rows) == 0 {
			return s.mk, nil
		}
		mr := binary.BigEndian.Uint64(s.mk[tagSize:])
		switch {
		case mr < s.rows[0]:
			return s.mk, nil
		case mr == s.rows[0]:
			s.src |= srcLog
			return s.mk, nil
		}
	}
	if len(s.rows) == 0 {
		return nil, nil
	}
	s.src = srcLog
	copy(s.key[:], s.tag[:])
	binary.BigEndian.PutUint64(s.key[tagSize:], s.rows[0])
	return s.key[:], nil
}
