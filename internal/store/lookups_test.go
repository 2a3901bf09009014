package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// keyQuery is the query that names acct's whole lookup key (service "svc"
// as item gives it), in group "G".
func keyQuery(acct string) Query {
	c := schema.GenericPassword
	f := schema.Fields{}.Set(c.Attr("acct"), schema.String(acct)).Set(c.Attr("svce"), schema.String("svc"))
	return Query{Class: c, Filters: f, Groups: []string{"G"}}
}

// findKeyIn returns the rows Find yields in tx for acct's lookup key.
func findKeyIn(tx *Tx, acct string) ([]uint64, error) {
	var rows []uint64
	err := tx.Find(keyQuery(acct), func(r *Record) (bool, error) { rows = append(rows, r.Row); return true, nil })
	return rows, err
}

// findKey returns the rows a read transaction's Find yields for acct.
func findKey(t *testing.T, db *DB, acct string) []uint64 {
	t.Helper()
	var rows []uint64
	if err := db.View(func(tx *Tx) (err error) { rows, err = findKeyIn(tx, acct); return err }); err != nil {
		t.Fatal(err)
	}
	return rows
}

// scanKeyIn returns the rows matching acct's lookup key in tx found
// without the cache or the index: every record of the class, checked
// against the query's tags.
func scanKeyIn(tx *Tx, acct string) []uint64 {
	c := schema.GenericPassword
	q := keyQuery(acct)
	var rows []uint64
	b, _ := tx.items(c)
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if len(k) != 8 {
			continue // not a row
		}
		r, err := parseRecord(c, binary.BigEndian.Uint64(k), v)
		if err == nil && tx.Matches(q, r) {
			rows = append(rows, r.Row)
		}
	}
	return rows
}

// get (tests) returns tag's posting list as a reader of commit txid sees it: one
// row (n = 1) or none (n = 0); ok is false on a miss.
func (c *lookupCache) get(tag protect.Tag, txid uint64) (row uint64, n int, ok bool) {
	h, ok := c.probe(tag, txid)
	return h.row, h.n, ok
}

// put (tests) records that tag's posting list at commit txid holds row (n = 1)
// or nothing (n = 0).
func (c *lookupCache) put(tag protect.Tag, txid, row uint64, n int) {
	c.store(tag, txid, row, n, 0)
}

// cached reports what the lookup cache holds for acct's list for a
// reader of the last commit.
func cached(db *DB, acct string) (row uint64, n int, ok bool) {
	return db.lookups.get(keyTag(db, acct), db.committed.Load())
}

// keyTag is the lookup tag of acct's item (as item gives it).
func keyTag(db *DB, acct string) protect.Tag {
	f, _ := item(acct, "")
	return db.lookupTag(schema.GenericPassword, f)
}

// The cache answers a repeated lookup, and every write that changes the
// list (an insert, a delete, a rewrite under another account, a rolled
// back insert) is seen by the next reader: a cached absence, a cached row.
func TestLookupCacheFollowsWrites(t *testing.T) {
	db, _ := openTest(t)
	if got := findKey(t, db, "x"); len(got) != 0 {
		t.Fatalf("empty store: %v", got)
	}
	if _, n, ok := cached(db, "x"); !ok || n != 0 {
		t.Fatalf("the absence is not cached: n=%d ok=%v", n, ok)
	}
	r := insert(t, db, "x", "s")
	if _, _, ok := cached(db, "x"); ok {
		t.Fatal("the insert did not retire the cached absence")
	}
	if got := findKey(t, db, "x"); !slices.Equal(got, []uint64{r.Row}) {
		t.Fatalf("after insert: %v, want [%d]", got, r.Row)
	}
	if row, n, ok := cached(db, "x"); !ok || n != 1 || row != r.Row {
		t.Fatalf("the row is not cached: %d %d %v", row, n, ok)
	}
	if got := findKey(t, db, "x"); !slices.Equal(got, []uint64{r.Row}) {
		t.Fatalf("from the cache: %v", got)
	}

	// A rolled-back insert of y leaves y's cached absence retired but
	// the answer unchanged.
	findKey(t, db, "y")
	err := db.Update(func(tx *Tx) error {
		f, s := item("y", "s")
		if _, _, err := tx.Insert(schema.GenericPassword, f, s); err != nil {
			return err
		}
		return errRollBack
	})
	if status.Of(err) != status.Param {
		t.Fatal(err)
	}
	if _, _, ok := cached(db, "y"); ok {
		t.Fatal("the rolled-back insert did not retire y's cached absence")
	}
	if got := findKey(t, db, "y"); len(got) != 0 {
		t.Fatalf("a rolled-back insert is found: %v", got)
	}

	// Rewrite x under account z: x's list empties, z's gains the row.
	findKey(t, db, "z")
	err = db.Update(func(tx *Tx) error {
		old, err := tx.ByRef(schema.GenericPassword, r.RefID)
		if err != nil || old == nil {
			return fmt.Errorf("x not found: %v", err)
		}
		f, s := item("z", "s2")
		r, _, err = tx.Rewrite(old, f, s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Both lists changed: neither cached answer may serve (a stale row
	// would be caught by the record check for this reader, not for an
	// older one: see TestLookupCacheAcrossCommits).
	for _, acct := range []string{"x", "z"} {
		if _, _, ok := cached(db, acct); ok {
			t.Fatalf("the rewrite did not retire %s's cached list", acct)
		}
	}
	if got := findKey(t, db, "x"); len(got) != 0 {
		t.Fatalf("x after the rewrite: %v", got)
	}
	if got := findKey(t, db, "z"); !slices.Equal(got, []uint64{r.Row}) {
		t.Fatalf("z after the rewrite: %v, want [%d]", got, r.Row)
	}

	// Delete z.
	findKey(t, db, "z")
	deleteRef(t, db, r.RefID)
	if _, _, ok := cached(db, "z"); ok {
		t.Fatal("the delete did not retire z's cached row")
	}
	if got := findKey(t, db, "z"); len(got) != 0 {
		t.Fatalf("z after the delete: %v", got)
	}
}

// A list of two rows (the same lookup key in two access groups) is not
// cached, and both rows are found every time.
func TestLookupCacheSkipsLongerLists(t *testing.T) {
	db, _ := openTest(t)
	c := schema.GenericPassword
	a := insert(t, db, "x", "s")
	f, s := item("x", "s")
	f = f.Set(c.Attr("agrp"), schema.String("H"))
	var b *Record
	if err := db.Update(func(tx *Tx) (err error) { b, _, err = tx.Insert(c, f, s); return err }); err != nil {
		t.Fatal(err)
	}
	q := keyQuery("x")
	q.Groups = []string{"G", "H"}
	for range 2 {
		var rows []uint64
		err := db.View(func(tx *Tx) error {
			return tx.Find(q, func(r *Record) (bool, error) { rows = append(rows, r.Row); return true, nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rows, []uint64{a.Row, b.Row}) {
			t.Fatalf("got %v, want [%d %d]", rows, a.Row, b.Row)
		}
		if _, _, ok := cached(db, "x"); ok {
			t.Fatal("a two-row list was cached")
		}
	}
	// A caller that stops at the first match still gets the first row.
	var first uint64
	if err := db.View(func(tx *Tx) error {
		return tx.Find(q, func(r *Record) (bool, error) { first = r.Row; return false, nil })
	}); err != nil {
		t.Fatal(err)
	}
	if first != a.Row {
		t.Fatalf("first match %d, want %d", first, a.Row)
	}
	// Stopping at the first match must not have cached a one-row list.
	if _, _, ok := cached(db, "x"); ok {
		t.Fatal("a caller stopping at its first match cached the list")
	}
	var rows []uint64
	if err := db.View(func(tx *Tx) error {
		return tx.Find(q, func(r *Record) (bool, error) { rows = append(rows, r.Row); return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows, []uint64{a.Row, b.Row}) {
		t.Fatalf("after a first-match query: %v, want [%d %d]", rows, a.Row, b.Row)
	}
}

// olderStillFinds checks, after acct's item (row) was removed, that a new
// reader finds nothing and caches that absence, and that the held older
// reader old still finds the row despite the entry.
func olderStillFinds(t *testing.T, db *DB, old func(func(*Tx)), acct string, row uint64) {
	t.Helper()
	if got := findKey(t, db, acct); len(got) != 0 {
		t.Fatalf("a new reader after the removal: %v", got)
	}
	if _, n, ok := cached(db, acct); !ok || n != 0 {
		t.Fatal("the absence was not cached")
	}
	old(func(tx *Tx) {
		got, err := findKeyIn(tx, acct)
		if err != nil || !slices.Equal(got, []uint64{row}) {
			t.Errorf("the older reader: %v %v, want [%d]", got, err, row)
		}
	})
}

// deleteRef deletes the generic password whose item ID is ref.
func deleteRef(t *testing.T, db *DB, ref [16]byte) {
	t.Helper()
	err := db.Update(func(tx *Tx) error {
		rec, err := tx.ByRef(schema.GenericPassword, ref)
		if err != nil || rec == nil {
			return fmt.Errorf("item not found: %v", err)
		}
		return tx.Delete(rec)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// freePages grows db's file and frees most of it, so that the writes of
// a test holding a read transaction open reuse pages: a writer that had
// to grow the map would wait for the held reader (bbolt's remap), forever.
func freePages(t *testing.T, db *DB) {
	t.Helper()
	bulk := insertMany(t, db, "bulk", 500, strings.Repeat("x", 200))
	if err := db.Update(func(tx *Tx) error {
		for _, r := range bulk {
			if err := tx.Delete(r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	insert(t, db, "w", "s") // a commit after the one that freed them
}

// holdReader starts a read transaction and keeps it open until the
// returned function is called with a function to run in it.
func holdReader(t *testing.T, db *DB) (run func(fn func(tx *Tx))) {
	t.Helper()
	fns := make(chan func(tx *Tx))
	done := make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(done)
		db.View(func(tx *Tx) error {
			close(started)
			for fn := range fns {
				fn(tx)
			}
			return nil
		})
	}()
	<-started
	t.Cleanup(func() { close(fns); <-done })
	return func(fn func(tx *Tx)) {
		ran := make(chan struct{})
		fns <- func(tx *Tx) { fn(tx); close(ran) }
		<-ran
	}
}

// Readers of different commits share the cache: an entry filled by a
// newer reader must not answer an older one across a change, nor an
// entry filled by an older reader a newer one. The deleted item's
// posting is in the log, or already merged into the index.
func TestLookupCacheAcrossCommits(t *testing.T) {
	for _, merged := range []bool{false, true} {
		t.Run(fmt.Sprintf("merged=%v", merged), func(t *testing.T) { lookupAcrossCommits(t, merged) })
	}
}

func lookupAcrossCommits(t *testing.T, merged bool) {
	smallMerges(t, 1<<20)
	db, _ := openTest(t)
	freePages(t, db)
	r := insert(t, db, "x", "s")
	if merged {
		mergeLogNow(t, db)
		if _, logged := logState(t, db); logged != 0 {
			t.Fatalf("%d postings still logged", logged)
		}
	}
	old := holdReader(t, db) // sees x
	deleteRef(t, db, r.RefID)
	olderStillFinds(t, db, old, "x", r.Row)

	// The other way round: y inserted after the old reader began; the
	// old reader caches y's absence at its commit; a new reader finds y.
	y := insert(t, db, "y", "s")
	old(func(tx *Tx) {
		if got, _ := findKeyIn(tx, "y"); len(got) != 0 {
			t.Errorf("the older reader sees y: %v", got)
		}
	})
	if got := findKey(t, db, "y"); !slices.Equal(got, []uint64{y.Row}) {
		t.Fatalf("a new reader after an old one's fill: %v, want [%d]", got, y.Row)
	}
}

// Wipe empties every list at once (under a new index key): nothing found
// before it is found after it, from the cache or otherwise.
func TestLookupCacheWipe(t *testing.T) {
	db, _ := openTest(t)
	insert(t, db, "x", "s")
	findKey(t, db, "x")
	findKey(t, db, "x")
	before := db.committed.Load()
	if err := db.Wipe(); err != nil {
		t.Fatal(err)
	}
	// A reader between the wipe's commit and the new index key would
	// compute old tags: the wipe starts a new table, which serves no
	// list read before its commit.
	if since := db.lookups.table.Load().since; since <= before || since != db.committed.Load() {
		t.Fatalf("the table after the wipe records from %d (wipe at %d)", since, db.committed.Load())
	}
	if got := findKey(t, db, "x"); len(got) != 0 {
		t.Fatalf("after the wipe: %v", got)
	}
	r := insert(t, db, "x", "s")
	if got := findKey(t, db, "x"); !slices.Equal(got, []uint64{r.Row}) {
		t.Fatalf("after the wipe and an insert: %v", got)
	}
}

// The table grows with the store; entries read before the growth are
// not trusted by the new table, and lookups stay right through it.
func TestLookupCacheGrows(t *testing.T) {
	def := lookupCache{limit: DefaultLookupCacheEntries}
	for _, tc := range []struct{ rows, want uint64 }{
		{0, minLookupSlots}, {minLookupSlots / 2, minLookupSlots}, {minLookupSlots/2 + 1, 2 * minLookupSlots},
		{100_000, 1 << 18}, {300_000, 1 << 20}, {600_000, 1 << 20}, {10_000_000, DefaultLookupCacheEntries},
		// The row count comes from the file: a damaged one must not
		// overflow the shift.
		{1<<62 + 5, DefaultLookupCacheEntries}, {1<<63 + 1, DefaultLookupCacheEntries}, {^uint64(0), DefaultLookupCacheEntries},
	} {
		if got := def.slots(tc.rows); got != int(tc.want) {
			t.Errorf("slots(%d) = %d, want %d", tc.rows, got, tc.want)
		}
	}
	db, _ := openTest(t)
	first := insert(t, db, "first", "s")
	findKey(t, db, "first")
	before := db.lookups.table.Load()
	insertMany(t, db, "bulk", minLookupSlots+10, "s")
	insert(t, db, "last", "s") // the writer after the bulk insert grows the table
	after := db.lookups.table.Load()
	if after == before || len(after.sets)*lookupWays != 4*minLookupSlots {
		t.Fatalf("the table did not grow: %d slots", len(after.sets)*lookupWays)
	}
	if after.since <= before.since {
		t.Fatalf("the new table records from %d, the old from %d", after.since, before.since)
	}
	if got := findKey(t, db, "first"); !slices.Equal(got, []uint64{first.Row}) {
		t.Fatalf("after the growth: %v", got)
	}
	if got := findKey(t, db, "bulk005"); len(got) != 1 {
		t.Fatalf("a bulk item: %v", got)
	}
}

// The cache's own rules, on a bare table.
func TestLookupCacheEntries(t *testing.T) {
	c := lookupCache{limit: DefaultLookupCacheEntries}
	c.reset(0, 10)
	var tag protect.Tag
	tag[0], tag[11] = 1, 2
	if _, _, ok := c.get(tag, 10); ok {
		t.Fatal("a hit in an empty table")
	}
	c.put(tag, 9, 7, 1) // read before the table records changes: dropped
	if _, _, ok := c.get(tag, 12); ok {
		t.Fatal("an entry read before the table's first commit was kept")
	}
	c.put(tag, 12, 7, 1)
	for _, tc := range []struct {
		txid uint64
		ok   bool
	}{{9, false}, {10, true}, {12, true}, {20, true}} {
		if row, n, ok := c.get(tag, tc.txid); ok != tc.ok || (ok && (row != 7 || n != 1)) {
			t.Errorf("reader at %d: %d %d %v, want ok=%v", tc.txid, row, n, ok, tc.ok)
		}
	}
	c.changed(tag, 15)
	for _, tc := range []struct {
		txid uint64
		ok   bool
	}{{12, false}, {14, false}, {15, false}, {20, false}} {
		// The set keeps only its last change: an entry read before it
		// serves nobody (the list at 12 is right for a reader at 12, but
		// the set cannot tell it from a list read at 12 for a reader at
		// 15).
		if _, _, ok := c.get(tag, tc.txid); ok != tc.ok {
			t.Errorf("after a change at 15, reader at %d: ok=%v, want %v", tc.txid, ok, tc.ok)
		}
	}
	c.put(tag, 15, 0, 0) // the same tag: replaced in place
	if _, n, ok := c.get(tag, 16); !ok || n != 0 || c.holding(tag) != 1 {
		t.Fatalf("the replaced entry: n=%d ok=%v", n, ok)
	}
	// More tags of one set than it has ways: the last ones put are found,
	// and a tag differing only in its last bytes is not confused.
	c.reset(0, 0)
	var tags []protect.Tag
	for i := range lookupWays + 2 {
		var t2 protect.Tag
		t2[0] = byte(i) // same set (the set comes from bytes 4-11)
		tags = append(tags, t2)
		c.put(t2, 1, uint64(i+1), 1)
	}
	last := tags[len(tags)-1]
	if row, _, ok := c.get(last, 1); !ok || row != uint64(len(tags)) {
		t.Fatalf("the last tag put: %d %v", row, ok)
	}
	other := last
	other[8] ^= 1
	if _, _, ok := c.get(other, 1); ok {
		t.Fatal("a tag differing in byte 8 hit")
	}
}

// Writers insert, delete and rename items among a few accounts (so the
// same lookup keys come back again and again), with the log merging all
// the time, while readers that last across commits compare, in one
// transaction, what Find answers through the cache with a scan of the
// records (they must agree at every commit) and read what they find.
func TestLookupCacheConcurrent(t *testing.T) {
	smallMerges(t, 10) // merges all the time: postings in the log and in the index
	db, _ := openTest(t)
	c := schema.GenericPassword
	accts := []string{"a", "b", "c", "d", "e", "f"}
	var workers []func() error
	for w := range 2 {
		rng := rand.New(rand.NewPCG(uint64(w), 7))
		workers = append(workers, func() error {
			acct := accts[rng.IntN(len(accts))]
			err := db.Write(func(tx *Tx) error {
				var cur []*Record
				err := tx.Find(keyQuery(acct), func(r *Record) (bool, error) { cur = append(cur, r); return true, nil })
				if err != nil {
					return err
				}
				switch {
				case len(cur) == 0:
					f, s := item(acct, "s")
					_, _, err = tx.Insert(c, f, s)
				case rng.IntN(2) == 0:
					err = tx.Delete(cur[0])
				default:
					f, s := item(accts[rng.IntN(len(accts))], "s")
					if rows, _ := findKeyIn(tx, fieldAcct(f)); len(rows) == 0 {
						_, _, err = tx.Rewrite(cur[0], f, s)
					}
				}
				if err == nil && rng.IntN(8) == 0 {
					return errRollBack
				}
				return err
			})
			if err != nil && status.Of(err) != status.Param {
				return err
			}
			return nil
		})
	}
	for r := range 2 {
		rng := rand.New(rand.NewPCG(uint64(r), 9))
		workers = append(workers, func() error {
			return db.View(func(tx *Tx) error {
				// Readers that last across commits, in their own order,
				// so an older reader meets entries a newer one filled.
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				for _, i := range rng.Perm(len(accts)) {
					acct := accts[i]
					got, err := findKeyIn(tx, acct)
					if err != nil {
						return err
					}
					if want := scanKeyIn(tx, acct); !slices.Equal(got, want) {
						return fmt.Errorf("commit %d, account %s: Find %v, scan %v", tx.txid(), acct, got, want)
					}
					// And what it finds reads. Every version change here
					// also changes a list, so this cannot catch a version
					// believed across commits (TestLookupCacheVersion-
					// OnlyAtItsCommit does); it does catch one row's
					// version given to another, and races under -race.
					err = tx.Find(keyQuery(acct), func(r *Record) (bool, error) {
						_, _, err := tx.Read(r, PartSecret)
						return true, err
					})
					if err != nil {
						return fmt.Errorf("commit %d, account %s: %v", tx.txid(), acct, err)
					}
				}
				return nil
			})
		})
	}
	stress(t, workers...)
}

// holding counts the entries of tag's set that hold tag.
func (c *lookupCache) holding(tag protect.Tag) int {
	s := c.table.Load().set(tag)
	w0, w1 := tagWords(tag)
	n := 0
	for i := range s.entries {
		e := &s.entries[i]
		if e.seq.Load() != 0 && e.tag0.Load() == w0 && e.tag1.Load()&lookupTagBits == w1 {
			n++
		}
	}
	return n
}

// A row whose header no longer parses loses its postings by a scan of
// the index; those removals change lists like any other, for a reader
// that began before the damage (to which the row still matches).
func TestLookupCacheDamagedRowRemoval(t *testing.T) {
	smallMerges(t, 1<<20)
	db, _ := openTest(t)
	freePages(t, db)
	r := insert(t, db, "x", "s")
	mergeLogNow(t, db) // x's postings in the index: removed by the scan
	old := holdReader(t, db)
	pref := append([]byte(schema.GenericPassword.Code), r.RefID[:]...)
	if err := db.PutRawRecord(pref, []byte{0xEE, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	err := db.Update(func(tx *Tx) error {
		f, _ := item("x", "")
		d, err := tx.ByPrimaryKey(schema.GenericPassword, f)
		if err != nil || d == nil || d.Readable() {
			return fmt.Errorf("want the damaged record, got %+v, %v", d, err)
		}
		return tx.Delete(d)
	})
	if err != nil {
		t.Fatal(err)
	}
	olderStillFinds(t, db, old, "x", r.Row)
}

// panicSeeker fails on every step, as a cursor on a damaged page can.
type panicSeeker struct{}

func (panicSeeker) Seek([]byte) ([]byte, []byte) { panic("damaged page") }
func (panicSeeker) Next() ([]byte, []byte)       { panic("damaged page") }

// The look-ahead past a caller's first match is a step the uncached walk
// never takes: when it fails, the answer stands and nothing is cached.
func TestLookupCacheLookAheadFails(t *testing.T) {
	var tag protect.Tag
	if lastInTag(panicSeeker{}, tag) {
		t.Fatal("a failed step counted as the end of the list")
	}
}

var errRollBack = status.New(status.Param, "rolled back on purpose")

func fieldAcct(f schema.Fields) string {
	v, _ := f.Get("acct")
	return v.Str
}

// Options.LookupCacheEntries: 0 is the default, negative turns the cache
// off, anything else is rounded up to a power of two within bounds.
func TestLookupCacheLimit(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{0, DefaultLookupCacheEntries}, {-1, 0}, {math.MinInt, 0},
		{1, lookupWays}, {lookupWays + 3, 2 * lookupWays}, {1000, 1024}, {1024, 1024},
		{1_000_000, 1 << 20}, {1 << 20, 1 << 20}, {1<<20 + 1, 1 << 21},
		{MaxLookupCacheEntries - 1, MaxLookupCacheEntries}, {math.MaxInt, MaxLookupCacheEntries},
	} {
		if got := lookupLimit(tc.in); got != tc.want {
			t.Errorf("lookupLimit(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
	small := lookupCache{limit: 64}
	for _, rows := range []uint64{0, 10, 64, 5000, ^uint64(0)} {
		if got := small.slots(rows); got != 64 {
			t.Errorf("limit 64: slots(%d) = %d", rows, got)
		}
	}
	big := lookupCache{limit: 1 << 20}
	if got := big.slots(200_000); got != 1<<19 {
		t.Errorf("limit 2^20: slots(200000) = %d, want 2^19", got)
	}
	if got := big.slots(300_000); got != 1<<20 {
		t.Errorf("limit 2^20: slots(300000) = %d, want 2^20", got)
	}
	if got := big.slots(600_000); got != 1<<20 {
		t.Errorf("limit 2^20: slots(600000) = %d, want 2^20", got)
	}
}

// With the cache off there is no table: nothing is remembered, Stats
// reports no memory, and lookups follow every write as before.
func TestLookupCacheOff(t *testing.T) {
	db, _ := openTestWith(t, Options{LookupCacheEntries: -1})
	r := insert(t, db, "x", "s")
	for range 2 {
		if got := findKey(t, db, "x"); !slices.Equal(got, []uint64{r.Row}) {
			t.Fatalf("lookup: %v, want [%d]", got, r.Row)
		}
	}
	if db.lookups.table.Load() != nil {
		t.Fatal("a table exists with the cache off")
	}
	if _, _, ok := cached(db, "x"); ok {
		t.Fatal("a list was cached with the cache off")
	}
	insertMany(t, db, "bulk", minLookupSlots+10, "s") // would grow a table
	deleteRef(t, db, r.RefID)
	if got := findKey(t, db, "x"); len(got) != 0 {
		t.Fatalf("after the delete: %v", got)
	}
	if db.lookups.table.Load() != nil {
		t.Fatal("a writer installed a table with the cache off")
	}
	s, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.LookupCacheEntries != 0 || s.LookupCacheBytes != 0 || s.LookupCacheFilled != 0 {
		t.Fatalf("stats of a cache that is off: %d entries, %d bytes, %d filled", s.LookupCacheEntries, s.LookupCacheBytes, s.LookupCacheFilled)
	}
}

// A small limit holds: the table never grows past it, lists still get
// cached, evicted ones are found again from the index, writes to keys
// that share the few sets retire what they change, and Stats reports the
// table's size and use.
func TestLookupCacheSmallLimit(t *testing.T) {
	const limit = 16
	db, _ := openTestWith(t, Options{LookupCacheEntries: limit})
	recs := insertMany(t, db, "u", 200, "s")
	for i := range 200 {
		acct := fmt.Sprintf("u%03d", i)
		for range 2 {
			if got := findKey(t, db, acct); !slices.Equal(got, []uint64{recs[i].Row}) {
				t.Fatalf("%s: %v, want [%d]", acct, got, recs[i].Row)
			}
		}
	}
	if n := len(db.lookups.table.Load().sets) * lookupWays; n != limit {
		t.Fatalf("the table has %d entries, limit %d", n, limit)
	}
	s, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.LookupCacheEntries != limit || s.LookupCacheBytes != int64(limit*lookupEntryBytes) {
		t.Fatalf("stats: %d entries, %d bytes, want %d and %d", s.LookupCacheEntries, s.LookupCacheBytes, limit, limit*lookupEntryBytes)
	}
	if s.LookupCacheFilled == 0 || s.LookupCacheFilled > limit {
		t.Fatalf("stats: %d entries filled of %d", s.LookupCacheFilled, limit)
	}
	if row, n, ok := cached(db, "u199"); !ok || n != 1 || row != recs[199].Row {
		t.Fatalf("the last list read is not cached: %d %d %v", row, n, ok)
	}
	// Every key again, long after most were evicted; then a change to
	// every tenth (its set is shared with a dozen others) and every key
	// once more.
	check := func(what string, want func(i int) []uint64) {
		t.Helper()
		for i := range 200 {
			acct := fmt.Sprintf("u%03d", i)
			for range 2 {
				if got := findKey(t, db, acct); !slices.Equal(got, want(i)) {
					t.Fatalf("%s, %s: %v, want %v", what, acct, got, want(i))
				}
			}
		}
	}
	check("read again", func(i int) []uint64 { return []uint64{recs[i].Row} })
	for i := 0; i < 200; i += 10 {
		deleteRef(t, db, recs[i].RefID)
	}
	check("after deletes", func(i int) []uint64 {
		if i%10 == 0 {
			return nil
		}
		return []uint64{recs[i].Row}
	})
}

// readKey finds acct's item through its lookup key and reads its secret,
// as a keychain read does: the status is OK, Decode (the version check
// or a seal failed) or ItemNotFound.
func readKey(db *DB, acct string) (string, status.Code) {
	var out string
	var st status.Code
	err := db.View(func(tx *Tx) error { out, st = readKeyIn(tx, acct); return nil })
	if err != nil {
		return "", status.Of(err)
	}
	return out, st
}

// readKeyIn is readKey inside tx.
func readKeyIn(tx *Tx, acct string) (string, status.Code) {
	var out string
	st := status.ItemNotFound
	err := tx.Find(keyQuery(acct), func(r *Record) (bool, error) {
		_, secret, err := tx.Read(r, PartSecret)
		if st = status.Of(err); err == nil {
			v, _ := secret.Get("v_Data")
			out = string(v.Bytes())
		}
		return false, nil
	})
	if err != nil {
		return "", status.Of(err)
	}
	return out, st
}

// keyVersion returns the version the lookup cache holds for acct's row
// for a reader of the last commit (0: none).
func keyVersion(db *DB, acct string) uint64 {
	h, _ := db.lookups.probe(keyTag(db, acct), db.committed.Load())
	return h.version
}

// emptyCommit commits a write transaction that changes no posting list.
func emptyCommit(t *testing.T, db *DB) {
	t.Helper()
	if err := db.Update(func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// A read through the lookup cache leaves the row's version in the entry,
// and a read of the same commit takes it from there rather than from the
// version table: with the version cache's chunk for that commit replaced
// by zeros, the read still succeeds. A reader of a later commit writes the
// entry again with the version it read.
func TestLookupCacheKeepsVersion(t *testing.T) {
	db, _ := openTest(t)
	x := insert(t, db, "x", "s1")
	if v := keyVersion(db, "x"); v != 0 {
		t.Fatalf("version %d before any read", v)
	}
	if sec, st := readKey(db, "x"); st != status.OK || sec != "s1" {
		t.Fatalf("first read: status %v", st)
	}
	if v := keyVersion(db, "x"); v != x.Version {
		t.Fatalf("the entry holds version %d, want %d", v, x.Version)
	}
	txid := db.committed.Load()
	var zeros [chunkRows * 8]byte
	n := x.Row / chunkRows
	db.vcache.slots[n%maxCachedChunks].Store(&cachedChunk{txid: txid, n: n, versions: zeros})
	if sec, st := readKey(db, "x"); st != status.OK || sec != "s1" {
		t.Fatalf("a read of the same commit looked the version up again: status %v", st)
	}

	// A commit that changes no list: the entry still answers, but its
	// version belongs to the earlier commit.
	emptyCommit(t, db)
	if row, n, ok := cached(db, "x"); !ok || n != 1 || row != x.Row {
		t.Fatalf("the list should still be cached: %d %d %v", row, n, ok)
	}
	if v := keyVersion(db, "x"); v != 0 {
		t.Fatalf("a version of commit %d served a reader of commit %d", txid, db.committed.Load())
	}
	if sec, st := readKey(db, "x"); st != status.OK || sec != "s1" {
		t.Fatalf("read at the next commit: status %v", st)
	}
	if v := keyVersion(db, "x"); v != x.Version {
		t.Fatalf("the entry was not written again at the new commit: version %d", v)
	}
}

// A version in the lookup cache is believed only at the commit it was
// read at. No write changes a row's version without changing a posting
// list today, but the cache must not depend on it: here a commit changes
// only the version table, and the next read sees the record as stale,
// while a reader of the commit before it, reading after the cache learnt
// the new version, still reads the record.
func TestLookupCacheVersionOnlyAtItsCommit(t *testing.T) {
	db, _ := openTest(t)
	freePages(t, db) // the held reader below must not stop a commit from growing the file
	x := insert(t, db, "x", "s1")
	if _, st := readKey(db, "x"); st != status.OK {
		t.Fatalf("first read: status %v", st)
	}
	old := holdReader(t, db)
	if err := db.Update(func(tx *Tx) error { return tx.setVersion(x.Row, x.Version+1) }); err != nil {
		t.Fatal(err)
	}
	if row, n, ok := cached(db, "x"); !ok || n != 1 || row != x.Row {
		t.Fatalf("the list should still be cached: %d %d %v", row, n, ok)
	}
	if sec, st := readKey(db, "x"); st != status.Decode || sec != "" {
		t.Fatalf("a record older than the version table was read: status %v", st)
	}
	if v := keyVersion(db, "x"); v != x.Version+1 {
		t.Fatalf("the entry holds version %d, want the table's %d", v, x.Version+1)
	}
	old(func(tx *Tx) {
		if sec, st := readKeyIn(tx, "x"); st != status.OK || sec != "s1" {
			t.Errorf("a reader of the earlier commit took the later commit's version: status %v", st)
		}
	})
}

// The version shares its word with the tag's last bytes and the row flag:
// the largest version that fits is kept and served, the next one is not
// kept (rather than wrapping round), and writing an entry again replaces
// it in place.
func TestLookupCacheVersionBits(t *testing.T) {
	c := lookupCache{limit: 64}
	c.reset(0, 1)
	var tag protect.Tag
	for i := range tag {
		tag[i] = byte(0xA0 + i)
	}
	for _, tc := range []struct{ stored, served uint64 }{
		{1, 1}, {lookupMaxVer, lookupMaxVer}, {lookupMaxVer + 1, 0}, {1<<32 + 1, 0}, {0, 0},
	} {
		c.store(tag, 5, 9, 1, tc.stored)
		h, ok := c.probe(tag, 5)
		if !ok || h.n != 1 || h.row != 9 || h.version != tc.served || h.refresh != (tc.served == 0) {
			t.Errorf("stored version %d: hit %+v (ok %v), want version %d", tc.stored, h, ok, tc.served)
		}
		if c.holding(tag) != 1 {
			t.Errorf("stored version %d: %d entries hold the tag", tc.stored, c.holding(tag))
		}
	}
	// A reader of another commit gets the list, never the version.
	c.store(tag, 5, 9, 1, 3)
	if h, ok := c.probe(tag, 6); !ok || h.version != 0 || !h.refresh {
		t.Errorf("a reader of a later commit: %+v (ok %v)", h, ok)
	}
	if h, ok := c.probe(tag, 4); !ok || h.version != 0 || h.refresh {
		t.Errorf("a reader of an earlier commit: %+v (ok %v)", h, ok)
	}
}

// A search inside a search (the identity join reads a key while it reads a
// certificate) must not leave one row's version in the other's entry.
// y has been rewritten once, so the two versions differ.
func TestLookupCacheVersionNestedRead(t *testing.T) {
	db, _ := openTest(t)
	x := insert(t, db, "x", "sx")
	y := insert(t, db, "y", "s")
	f, s := item("y", "sy")
	if err := db.Update(func(tx *Tx) error { _, _, err := tx.Rewrite(y, f, s); return err }); err != nil {
		t.Fatal(err)
	}
	readKey(db, "x")
	readKey(db, "y")
	emptyCommit(t, db) // both entries older than the readers that follow
	err := db.View(func(tx *Tx) error {
		return tx.Find(keyQuery("x"), func(r *Record) (bool, error) {
			if _, _, err := tx.Read(r, PartSecret); err != nil {
				return false, err
			}
			if sec, st := readKeyIn(tx, "y"); st != status.OK || sec != "sy" {
				return false, fmt.Errorf("the inner read: status %v", st)
			}
			return false, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if vx, vy := keyVersion(db, "x"), keyVersion(db, "y"); vx == vy || vy != y.Version+1 || vx != 0 && vx != x.Version {
		t.Fatalf("after a nested read: x's entry holds version %d (record %d), y's %d (record %d)", vx, x.Version, vy, y.Version+1)
	}
	if sec, st := readKey(db, "x"); st != status.OK || sec != "sx" {
		t.Fatalf("x after a nested read: status %v", st)
	}
}
