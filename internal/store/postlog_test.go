package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// mergeLogNow merges db's posting log into the index.
func mergeLogNow(t *testing.T, db *DB) {
	t.Helper()
	if err := db.Update(func(tx *Tx) error { return tx.mergeLog() }); err != nil {
		t.Fatal(err)
	}
}

// insertMany inserts n generic passwords (accounts prefix000…, secrets
// secret) in one transaction and returns their records.
func insertMany(t *testing.T, db *DB, prefix string, n int, secret string) []*Record {
	t.Helper()
	var recs []*Record
	err := db.Update(func(tx *Tx) error {
		for i := range n {
			f, s := item(fmt.Sprintf("%s%03d", prefix, i), secret)
			r, _, err := tx.Insert(schema.GenericPassword, f, s)
			if err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// secondChild reads, in the closed store at path, the branch page root
// of a bucket (skipping the test unless it is a branch over three children
// or more) and returns its second element's offset in the page, first key
// and child page.
func secondChild(t *testing.T, path string, root uint64) (keyOff int, key []byte, child uint64) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pg := raw[int(root)*os.Getpagesize():]
	if binary.NativeEndian.Uint16(pg[8:]) != flagBranch || binary.NativeEndian.Uint16(pg[10:]) < 3 {
		t.Skip("the tree is not a branch over three children or more")
	}
	e := pg[16+16:] // branch elements are 16 bytes, after the 16-byte header
	pos, ks := binary.NativeEndian.Uint32(e[0:]), binary.NativeEndian.Uint32(e[4:])
	return 16 + 16 + int(pos), bytes.Clone(e[pos : pos+ks]), binary.NativeEndian.Uint64(e[8:])
}

// bucketRoot returns the root page of bucket name in the store at path.
func bucketRoot(t *testing.T, path string, name []byte) (root uint64) {
	t.Helper()
	boltView(t, path, func(btx *bbolt.Tx) { root = uint64(btx.Bucket(name).Root()) })
	return root
}

// smallMerges makes the log merge after a handful of postings for the
// rest of the test.
func smallMerges(t *testing.T, n int) {
	t.Helper()
	t.Cleanup(SetMergeLimits(n, n))
}

// noLogTail makes every commit append its operations to the log's bucket
// (none stay in the tip), for tests that damage the bucket's values.
func noLogTail(t *testing.T) {
	t.Helper()
	old := maxLogTail
	maxLogTail = 0
	t.Cleanup(func() { maxLogTail = old })
}

// findAcct returns the rows Find yields for account acct (by the lookup
// key: svce "svc" is in item's fields, agrp "G").
func findAcct(t *testing.T, db *DB, acct string) []uint64 {
	t.Helper()
	c := schema.GenericPassword
	q := Query{Class: c, Filters: schema.Fields{}.Set(c.Attr("acct"), schema.String(acct))}
	var rows []uint64
	if err := db.View(func(tx *Tx) error {
		return tx.Find(q, func(r *Record) (bool, error) { rows = append(rows, r.Row); return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	return rows
}

// byKey returns the row ByPrimaryKey finds for acct in a write
// transaction (0: none).
func byKey(t *testing.T, db *DB, acct string) uint64 {
	t.Helper()
	f, _ := item(acct, "")
	var row uint64
	err := db.Update(func(tx *Tx) error {
		r, err := tx.ByPrimaryKey(schema.GenericPassword, f)
		if r != nil {
			row = r.Row
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return row
}

// boltUpdate runs fn in a bbolt write transaction on the closed store at
// path (damage and old layouts are made this way).
func boltUpdate(t *testing.T, path string, fn func(btx *bbolt.Tx) error) {
	t.Helper()
	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// logState returns the number of postings in the index bucket and in
// the log (its bucket's values and the tail in the tip).
func logState(t *testing.T, db *DB) (index, logged int) {
	t.Helper()
	err := db.bolt.View(func(btx *bbolt.Tx) error {
		index = btx.Bucket(bucketIndex).Stats().KeyN
		if b := btx.Bucket(bucketPlog); b != nil {
			b.ForEach(func(_, v []byte) error { logged += len(v) / logOpSize; return nil })
		}
		logged += len(btx.Bucket(bucketTip).Get(keyLogTail)) / logOpSize
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return index, logged
}

// Postings go to the log, and a merge moves them into the index; lookups
// find every item before, across and after merges, after a reopen (the
// table rebuilt from the log) and Check finds nothing wrong.
func TestLogMergesIntoIndex(t *testing.T) {
	smallMerges(t, 40)
	db, path := openTest(t)
	want := map[string]uint64{}
	for i := range 30 {
		acct := fmt.Sprintf("a%03d", i)
		want[acct] = insert(t, db, acct, "s").Row
	}
	// Every item owns its lookup-key, svce and acct postings.
	if index, logged := logState(t, db); logged == 0 {
		t.Fatalf("after 30 inserts the log holds no postings (index %d)", index)
	}
	for i := 30; i < 100; i++ {
		acct := fmt.Sprintf("a%03d", i)
		want[acct] = insert(t, db, acct, "s").Row
	}
	index, _ := logState(t, db)
	db.plog.mu.RLock()
	live := db.plog.live
	db.plog.mu.RUnlock()
	if index == 0 || live > 40+4 {
		t.Fatalf("after 100 inserts with merges past 40 postings: index %d, %d postings live in the table", index, live)
	}
	check := func(db *DB, when string) {
		t.Helper()
		for acct, row := range want {
			if got := findAcct(t, db, acct); !slices.Equal(got, []uint64{row}) {
				t.Fatalf("%s: Find(%s) = %v, want [%d]", when, acct, got, row)
			}
			if got := byKey(t, db, acct); got != row {
				t.Fatalf("%s: ByPrimaryKey(%s) = %d, want %d", when, acct, got, row)
			}
		}
		rep, err := db.Check()
		if err != nil || len(rep.Problems) != 0 {
			t.Fatalf("%s: Check: %v %v", when, err, rep.Problems)
		}
	}
	check(db, "open")
	db.Close()
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db, "reopened")
	mergeLogNow(t, db)
	if _, logged := logState(t, db); logged != 0 {
		t.Fatalf("a merge left %d postings in the log", logged)
	}
	check(db, "merged")
}

// Deleting and rewriting items removes their postings from wherever
// they are (log or index); the log replays removals at Open.
func TestLogRemovesPostings(t *testing.T) {
	smallMerges(t, 1<<20) // no merge unless asked
	db, path := openTest(t)
	old := insert(t, db, "merged", "s")
	mergeLogNow(t, db)
	fresh := insert(t, db, "logged", "s")
	idx0, log0 := logState(t, db)
	for _, r := range []*Record{old, fresh} {
		if err := db.Update(func(tx *Tx) error { return tx.Delete(r) }); err != nil {
			t.Fatal(err)
		}
	}
	idx1, log1 := logState(t, db)
	if idx1 >= idx0 || log1 <= log0 {
		t.Fatalf("index %d → %d postings, log %d → %d ops: want the merged item's postings deleted from the index and the logged one's removal logged", idx0, idx1, log0, log1)
	}
	for _, acct := range []string{"merged", "logged"} {
		if got := findAcct(t, db, acct); len(got) != 0 {
			t.Fatalf("a deleted item is still found: %s %v", acct, got)
		}
	}
	// A rewrite whose account changes moves its postings.
	r := insert(t, db, "before", "s")
	f, s := item("after", "s2")
	if err := db.Update(func(tx *Tx) error { _, _, err := tx.Rewrite(r, f, s); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := findAcct(t, db, "before"); len(got) != 0 {
		t.Fatalf("the rewritten item is found under its old account: %v", got)
	}
	if got := findAcct(t, db, "after"); !slices.Equal(got, []uint64{r.Row}) {
		t.Fatalf("the rewritten item under its new account: %v", got)
	}
	if got := findAcct(t, db, "logged"); len(got) != 0 {
		t.Fatalf("a deleted item is found after reopening: %v", got)
	}
	rep, err := db.Check()
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Check: %v %v", err, rep.Problems)
	}
}

// A transaction that rolls back takes its log entries back: nothing it
// posted, removed or merged is seen afterwards.
func TestLogRollback(t *testing.T) {
	smallMerges(t, 1<<20)
	db, _ := openTest(t)
	kept := insert(t, db, "kept", "s")
	counts := func() (live, ntags int) {
		db.plog.mu.RLock()
		defer db.plog.mu.RUnlock()
		return db.plog.live, db.plog.tags.len()
	}
	live0, ntags0 := counts()
	boom := status.New(status.Param, "boom")
	f, s := item("ghost", "s")
	err := db.Update(func(tx *Tx) error {
		if _, _, err := tx.Insert(schema.GenericPassword, f, s); err != nil {
			return err
		}
		if err := tx.Delete(kept); err != nil {
			return err
		}
		if err := tx.mergeLog(); err != nil {
			return err
		}
		return boom
	})
	if status.Of(err) != status.Param {
		t.Fatalf("Update: %v", err)
	}
	if got := findAcct(t, db, "ghost"); len(got) != 0 {
		t.Fatalf("a rolled-back insert is found: %v", got)
	}
	if got := findAcct(t, db, "kept"); !slices.Equal(got, []uint64{kept.Row}) {
		t.Fatalf("a rolled-back delete hid the item: %v", got)
	}
	if got := byKey(t, db, "ghost"); got != 0 {
		t.Fatalf("a write transaction sees a rolled-back insert at row %d", got)
	}
	if live, ntags := counts(); live != live0 || ntags != ntags0 {
		t.Fatalf("after the rollback the table has %d live entries under %d tags, want %d and %d", live, ntags, live0, ntags0)
	}
	// A panic inside the transaction rolls back the same way.
	f2, s2 := item("panicked", "s")
	err = db.Update(func(tx *Tx) error {
		if _, _, err := tx.Insert(schema.GenericPassword, f2, s2); err != nil {
			return err
		}
		panic("page fault")
	})
	if status.Of(err) != status.Decode {
		t.Fatalf("a panicking transaction: %v", err)
	}
	if got := findAcct(t, db, "panicked"); len(got) != 0 {
		t.Fatalf("a panicked insert is found: %v", got)
	}
}

// A reader sees the log as of its commit: entries ended (removed or
// merged) after it began stay for it until it ends, and are dropped
// once no reader can see them.
func TestLogReadersKeepEndedEntries(t *testing.T) {
	smallMerges(t, 1<<20)
	db, _ := openTest(t)
	gone := insert(t, db, "gone", "s")
	moved := insert(t, db, "moved", "s")
	// A reader registered now, as View registers one.
	reader := db.enterReader()
	T := db.committed.Load()
	if err := db.Update(func(tx *Tx) error { return tx.Delete(gone) }); err != nil {
		t.Fatal(err)
	}
	mergeLogNow(t, db)
	insert(t, db, "later", "s") // one more commit, which collects
	lookup := db.lookupTag(schema.GenericPassword, mustItem("gone"))
	if !db.plog.holds(lookup, gone.Row, T) {
		t.Fatal("an entry a registered reader can see was dropped")
	}
	if db.plog.holds(lookup, gone.Row, db.committed.Load()) {
		t.Fatal("a removed posting is visible to a new reader")
	}
	mlook := db.lookupTag(schema.GenericPassword, mustItem("moved"))
	if !db.plog.holds(mlook, moved.Row, T) || db.plog.holds(mlook, moved.Row, db.committed.Load()) {
		t.Fatal("a merged entry: want it visible to the old reader only (the new ones read the index)")
	}
	db.readers.leave(reader)
	insert(t, db, "after", "s")
	db.plog.mu.RLock()
	_, stillGone := db.plog.tags[sliceOf(lookup)][lookup]
	_, stillMoved := db.plog.tags[sliceOf(mlook)][mlook]
	db.plog.mu.RUnlock()
	if stillGone || stillMoved {
		t.Fatalf("ended entries kept after their last reader left (gone %v, moved %v)", stillGone, stillMoved)
	}
	for _, acct := range []string{"moved", "later", "after"} {
		if len(findAcct(t, db, acct)) != 1 {
			t.Fatalf("%s is not found", acct)
		}
	}
}

func mustItem(acct string) schema.Fields {
	f, _ := item(acct, "")
	return f
}

// A real read transaction open while a writer removes and merges keeps
// answering as of its commit.
func TestLogReaderDuringMerge(t *testing.T) {
	smallMerges(t, 1<<20)
	db, _ := openTest(t)
	// Free pages for the writer: bbolt grows its map only when no reader
	// holds it, so a writer that must grow the file waits for the reader.
	junk := insertMany(t, db, "junk", 2000, "s")
	err := db.Update(func(tx *Tx) error {
		for _, r := range junk {
			if err := tx.Delete(r); err != nil {
				return err
			}
		}
		return tx.mergeLog()
	})
	if err != nil {
		t.Fatal(err)
	}
	var rs []*Record
	for i := range 20 {
		rs = append(rs, insert(t, db, fmt.Sprintf("r%02d", i), "s"))
	}
	c := schema.GenericPassword
	q := func(acct string) Query {
		return Query{Class: c, Filters: schema.Fields{}.Set(c.Attr("acct"), schema.String(acct))}
	}
	err = db.View(func(tx *Tx) error {
		done := make(chan error, 1)
		go func() {
			done <- db.Update(func(wtx *Tx) error {
				for _, r := range rs[:10] {
					if err := wtx.Delete(r); err != nil {
						return err
					}
				}
				return wtx.mergeLog()
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				return err
			}
		case <-time.After(20 * time.Second):
			return errors.New("the writer did not commit beside a reader")
		}
		insert(t, db, "x", "s") // a commit that collects what it may
		for i, r := range rs {
			n := 0
			if err := tx.Find(q(fmt.Sprintf("r%02d", i)), func(*Record) (bool, error) { n++; return true, nil }); err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("row %d: the old reader finds %d items, want 1", r.Row, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		want := 1
		if i < 10 {
			want = 0
		}
		if got := len(findAcct(t, db, fmt.Sprintf("r%02d", i))); got != want {
			t.Fatalf("r%02d: a new reader finds %d, want %d", i, got, want)
		}
	}
}

// Queries intersecting postings from the index and the log, with many
// rows under one tag (svce) and few under another, agree with a model
// whatever mix of merged and logged postings they meet.
func TestLogIntersectMatchesModel(t *testing.T) {
	smallMerges(t, 1<<20)
	db, _ := openTest(t)
	c := schema.GenericPassword
	rng := rand.New(rand.NewPCG(7, 9))
	type it struct {
		acct, svce string
		rec        *Record
	}
	var live []*it
	for step := range 400 {
		switch {
		case step%97 == 0:
			mergeLogNow(t, db)
		case len(live) > 0 && rng.IntN(4) == 0:
			i := rng.IntN(len(live))
			if err := db.Update(func(tx *Tx) error { return tx.Delete(live[i].rec) }); err != nil {
				t.Fatal(err)
			}
			live = slices.Delete(live, i, i+1)
		default:
			x := &it{acct: fmt.Sprintf("u%d", rng.IntN(40)), svce: fmt.Sprintf("s%d", rng.IntN(3))}
			f, s := item(x.acct, "s")
			f = f.Set(c.Attr("svce"), schema.String(x.svce))
			err := db.Update(func(tx *Tx) error {
				if r, _ := tx.ByPrimaryKey(c, f); r != nil {
					return status.New(status.DuplicateItem, "dup")
				}
				r, _, err := tx.Insert(c, f, s)
				x.rec = r
				return err
			})
			if status.Of(err) == status.DuplicateItem {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, x)
		}
		// Query an account and a service (two indexed postings).
		acct, svce := fmt.Sprintf("u%d", rng.IntN(40)), fmt.Sprintf("s%d", rng.IntN(3))
		var want []uint64
		for _, x := range live {
			if x.acct == acct && x.svce == svce {
				want = append(want, x.rec.Row)
			}
		}
		slices.Sort(want)
		var got []uint64
		q := Query{Class: c, Filters: schema.Fields{}.Set(c.Attr("acct"), schema.String(acct)).Set(c.Attr("svce"), schema.String(svce))}
		if err := db.View(func(tx *Tx) error {
			return tx.Find(q, func(r *Record) (bool, error) { got = append(got, r.Row); return true, nil })
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: %s/%s = %v, want %v", step, acct, svce, got, want)
		}
		// And a whole service (one long posting list, paged through the
		// seeker's buffer).
		want = want[:0]
		for _, x := range live {
			if x.svce == svce {
				want = append(want, x.rec.Row)
			}
		}
		slices.Sort(want)
		got = got[:0]
		q = Query{Class: c, Filters: schema.Fields{}.Set(c.Attr("svce"), schema.String(svce))}
		if err := db.View(func(tx *Tx) error {
			return tx.Find(q, func(r *Record) (bool, error) { got = append(got, r.Row); return true, nil })
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: service %s = %v, want %v", step, svce, got, want)
		}
	}
	rep, err := db.Check()
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Check: %v %v", err, rep.Problems)
	}
}

// A damaged log value (cut short, or an unknown operation) is skipped
// whole at Open and reported by Check; the other values still count, and
// rewriting an item whose postings were lost posts them again.
func TestLogDamagedValue(t *testing.T) {
	smallMerges(t, 1<<20)
	noLogTail(t)
	db, path := openTest(t)
	a := insert(t, db, "a", "s")
	b := insert(t, db, "b", "s")
	insert(t, db, "c", "s")
	db.Close()
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		bk := btx.Bucket(bucketPlog)
		c := bk.Cursor()
		k, v := c.Last()
		bad := append([]byte(nil), v...)
		bad[2*logOpSize] = 'x' // c's third operation
		if err := bk.Put(k, bad); err != nil {
			return err
		}
		k, v = c.Prev()
		return bk.Put(k, v[:len(v)-3]) // b's operations, cut short
	})
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := findAcct(t, db, "a"); !slices.Equal(got, []uint64{a.Row}) {
		t.Fatalf("an intact value's postings: %v", got)
	}
	rep, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	var damaged bool
	missing := 0
	for _, p := range rep.Problems {
		damaged = damaged || p.Detail == "posting log: 2 values are damaged (their postings are lost until the items are rewritten)"
		if p.Detail == "an index posting is missing" {
			missing++
		}
	}
	if !damaged || missing < 6 {
		t.Fatalf("Check: %+v", rep.Problems)
	}
	for _, acct := range []string{"b", "c"} {
		if got := findAcct(t, db, acct); len(got) != 0 {
			t.Fatalf("%s: a skipped value's postings were believed: %v", acct, got)
		}
	}
	f, s := item("b", "s2")
	if err := db.Update(func(tx *Tx) error { _, _, err := tx.Rewrite(b, f, s); return err }); err != nil {
		t.Fatal(err)
	}
	if got := findAcct(t, db, "b"); !slices.Equal(got, []uint64{b.Row}) {
		t.Fatalf("a rewritten item is not found again: %v", got)
	}
}

// The table's visibility rule, on its own: an entry is seen by the
// commits from the one that logged it up to the one before it ended.
func TestLogVisibility(t *testing.T) {
	var l postingLog
	l.reset()
	var tag protect.Tag
	tag[0] = 1
	l.insert(tag, logEntry{row: 5, add: 10, end: 20})
	l.insert(tag, logEntry{row: 5, add: 25, end: never}) // re-posted
	l.insert(tag, logEntry{row: 3, add: 0, end: never})
	for _, tc := range []struct {
		txid uint64
		want []uint64
	}{{9, []uint64{3}}, {10, []uint64{3, 5}}, {19, []uint64{3, 5}}, {20, []uint64{3}}, {25, []uint64{3, 5}}} {
		got, more := l.rowsFrom(tag, tc.txid, 0, make([]uint64, 0, 8))
		if !slices.Equal(got, tc.want) || more {
			t.Fatalf("at %d: %v (more %v), want %v", tc.txid, got, more, tc.want)
		}
	}
	// Paging: a buffer of one row at a time.
	got, more := l.rowsFrom(tag, 25, 0, make([]uint64, 0, 1))
	if !slices.Equal(got, []uint64{3}) || !more {
		t.Fatalf("first page: %v %v", got, more)
	}
	got, more = l.rowsFrom(tag, 25, 4, make([]uint64, 0, 1))
	if !slices.Equal(got, []uint64{5}) || more {
		t.Fatalf("second page: %v %v", got, more)
	}
}

// A panic inside bbolt's commit (here its rebalance reads a damaged
// sibling leaf) comes after the transaction's function returned: the
// handle must refuse later writes, as after a failed commit, instead of
// letting the next one reuse the transaction ID and publish the dead
// transaction's log changes. (A review finding: the next commit hid a
// stored item, and an Add of its primary key then stored a duplicate.)
func TestLogCommitPanicStopsWrites(t *testing.T) {
	smallMerges(t, 1<<20)
	db, path := openTest(t)
	c := schema.GenericPassword
	recs := insertMany(t, db, "a", 200, strings.Repeat("x", 200))
	db.Close()
	// The class's tree: a root branch over leaves; leaf 1 holds the rows
	// below leaf 2's first key.
	_, key2, leaf2 := secondChild(t, path, bucketRoot(t, path, classBucket(c)))
	firstOf2 := binary.BigEndian.Uint64(key2)
	var leaf1 []*Record
	for _, r := range recs {
		if r.Row < firstOf2 {
			leaf1 = append(leaf1, r)
		}
	}
	// Leaf 2's first key gets size 0: bbolt's rebalance asserts on it.
	patchPage(t, path, leaf2, 16+8, []byte{0, 0, 0, 0})
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Skipf("Open refused the damage: %v", err)
	}
	defer db.Close()
	kept := leaf1[0]
	err = db.Update(func(tx *Tx) error {
		for _, r := range leaf1[1:] { // leaf 1 underfilled: the commit rebalances
			if err := tx.Delete(r); err != nil {
				return err
			}
		}
		f, s := item("phantom", "s")
		_, _, err := tx.Insert(c, f, s)
		return err
	})
	if status.Of(err) != status.Decode {
		t.Fatalf("the commit over a damaged sibling: %v, want errSecDecode", err)
	}
	err = db.Update(func(tx *Tx) error { return tx.btx.Bucket(bucketMeta).Put([]byte("next"), []byte("x")) })
	if status.Of(err) != status.IO {
		t.Fatalf("a write after a commit panicked: %v, want errSecIO", err)
	}
	acct := fmt.Sprintf("a%03d", slices.Index(recs, kept))
	if got := findAcct(t, db, acct); !slices.Equal(got, []uint64{kept.Row}) {
		t.Fatalf("an item of the failed commit's leaf: Find = %v, want [%d]", got, kept.Row)
	}
	if got := findAcct(t, db, "phantom"); len(got) != 0 {
		t.Fatalf("the failed commit's insert is found: %v", got)
	}
}

// The count of damaged log values goes with the log: a damaged value
// counts until every slice has merged past it (or a wipe empties the
// log), and a merge that rolls back restores the count.
func TestLogDamagedCountFollowsTheLog(t *testing.T) {
	smallMerges(t, 1<<20)
	noLogTail(t)
	db, path := openTest(t)
	insert(t, db, "a", "s")
	insert(t, db, "b", "s")
	db.Close()
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		b := btx.Bucket(bucketPlog)
		k, v := b.Cursor().Last()
		return b.Put(k, v[:len(v)-3])
	})
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := db.plog.Damaged(); n != 1 {
		t.Fatalf("damaged values at Open: %d", n)
	}
	err = db.Update(func(tx *Tx) error {
		if err := tx.mergeLog(); err != nil {
			return err
		}
		return status.New(status.Param, "roll back")
	})
	if status.Of(err) != status.Param {
		t.Fatal(err)
	}
	if n := db.plog.Damaged(); n != 1 {
		t.Fatalf("after a rolled-back merge: %d damaged values, want 1", n)
	}
	// Slice merges, as commits make them: the damaged value leaves once
	// every slice has merged past it.
	for s := range logSlices {
		if n := db.plog.Damaged(); n != 1 {
			t.Fatalf("after %d of %d slice merges: %d damaged values, want 1", s, logSlices, n)
		}
		if err := db.Update(func(tx *Tx) error { return tx.mergeSlice() }); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.plog.Damaged(); n != 0 {
		t.Fatalf("after every slice merged past it: %d damaged values, want 0", n)
	}
	rep, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if strings.HasPrefix(p.Detail, "posting log:") {
			t.Fatalf("Check after the merge: %s", p.Detail)
		}
	}
}

// checkTx verifies, in tx, that the postings the transaction sees are
// exactly those the records of its commit list.
func checkTx(tx *Tx) error {
	c := schema.GenericPassword
	b := tx.btx.Bucket(classBucket(c))
	want := map[string]bool{}
	var tags []protect.Tag
	seen := map[protect.Tag]bool{}
	err := b.ForEach(func(k, v []byte) error {
		row := binary.BigEndian.Uint64(k)
		r, err := parseRecord(c, row, v)
		if err != nil {
			return err
		}
		p := r.postedTags()
		for i := 0; i < r.nposted; i++ {
			var t protect.Tag
			copy(t[:], p[i*tagSize:])
			want[string(binary.BigEndian.AppendUint64(t[:], row))] = true
			if !seen[t] {
				seen[t] = true
				tags = append(tags, t)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	got := map[string]bool{}
	for _, t := range tags {
		cur := tx.postingCursor(t[:])
		seek := make([]byte, tagSize+8)
		copy(seek, t[:])
		last := uint64(0)
		first := true
		for k, _ := cur.Seek(seek); k != nil; k, _ = cur.Next() {
			if !bytes.HasPrefix(k, t[:]) || len(k) != tagSize+8 {
				tx.releaseCursor(cur)
				return fmt.Errorf("bad key %x", k)
			}
			row := binary.BigEndian.Uint64(k[tagSize:])
			if !first && row <= last {
				tx.releaseCursor(cur)
				return fmt.Errorf("tag %x: rows out of order %d after %d", t, row, last)
			}
			first, last = false, row
			got[string(k)] = true
		}
		tx.releaseCursor(cur)
	}
	for k := range want {
		if !got[k] {
			return fmt.Errorf("txid %d (writable %v): posting %x of a record is not seen", tx.txid(), tx.writable, k)
		}
	}
	for k := range got {
		if !want[k] {
			return fmt.Errorf("txid %d (writable %v): posting %x seen with no record listing it", tx.txid(), tx.writable, k)
		}
	}
	return nil
}

// Writers (group commits of inserts, deletes, rewrites and members that
// fail and roll back) and readers run together with merges every ~20
// items; every transaction, read or write, must see exactly the postings
// its commit's records list, each tag's rows ascending and unique.
func TestLogConcurrentReadersAndWriters(t *testing.T) {
	smallMerges(t, 60)
	db, _ := openTest(t)
	c := schema.GenericPassword
	var n atomic.Int64
	errBoom := status.New(status.Param, "boom")
	pick := func(tx *Tx, rng *rand.Rand) *Record {
		b := tx.btx.Bucket(classBucket(c))
		cnt := b.Stats().KeyN
		if cnt == 0 {
			return nil
		}
		i := rng.IntN(cnt)
		cur := b.Cursor()
		k, v := cur.First()
		for ; i > 0 && k != nil; i-- {
			k, v = cur.Next()
		}
		if k == nil {
			return nil
		}
		r, err := parseRecord(c, binary.BigEndian.Uint64(k), bytes.Clone(v))
		if err != nil {
			return nil
		}
		return r
	}
	var workers []func() error
	for w := range 4 {
		rng := rand.New(rand.NewPCG(uint64(w), 1))
		workers = append(workers, func() error {
			op := rng.IntN(10)
			var seen error
			err := db.Write(func(tx *Tx) error {
				switch {
				case op < 4:
					f, s := item(fmt.Sprintf("a%d", n.Add(1)), "s")
					if _, _, err := tx.Insert(c, f, s); err != nil {
						return err
					}
				case op < 6:
					if r := pick(tx, rng); r != nil {
						if err := tx.Delete(r); err != nil {
							return err
						}
					}
				case op < 8:
					if r := pick(tx, rng); r != nil {
						f, s := item(fmt.Sprintf("a%d", n.Add(1)%50), "s")
						if _, _, err := tx.Rewrite(r, f, s); err != nil {
							return err
						}
					}
				case op < 9:
					f, s := item(fmt.Sprintf("b%d", n.Add(1)), "s")
					if _, _, err := tx.Insert(c, f, s); err != nil {
						return err
					}
					if r := pick(tx, rng); r != nil {
						tx.Delete(r)
					}
					return errBoom // rolled back (group member fails)
				default:
					// A group member's failure runs this again: keep
					// the first run's finding.
					if err := checkTx(tx); err != nil && seen == nil {
						seen = err
					}
				}
				return nil
			})
			if err != nil && status.Of(err) != status.Param {
				return err
			}
			return seen
		})
	}
	for range 4 {
		workers = append(workers, func() error {
			return db.View(func(tx *Tx) error {
				if err := checkTx(tx); err != nil {
					return err
				}
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				return checkTx(tx)
			})
		})
	}
	stress(t, workers...)
	rep, err := db.Check()
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("Check: %v %+v", err, rep.Problems)
	}
	if index, _ := logState(t, db); index == 0 {
		t.Fatal("no merge happened: the index is empty")
	}
}

// stress calls each worker over and over, each in its own goroutine, for
// two seconds (300 ms with -short), then fails t with the number of
// calls that returned an error and the first of them.
func stress(t *testing.T, workers ...func() error) {
	t.Helper()
	var failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := w(); err != nil && failures.Add(1) == 1 {
					firstErr.Store(err)
				}
			}
		}()
	}
	run := 2 * time.Second
	if testing.Short() {
		run = 300 * time.Millisecond
	}
	time.Sleep(run)
	close(stop)
	wg.Wait()
	if f := failures.Load(); f > 0 {
		t.Fatalf("%d failures, first: %v", f, firstErr.Load())
	}
}

// Damage to the log's pages: a page of the wrong type is refused at Open
// (the walk, as for any page); a leaf whose element table lies (a key
// size past the page) opens, and the value behind the lying element is
// skipped as damaged (or, when bbolt fails on it, the replay keeps what it
// had read). Writes go on, the next merge (which drops the log) clears
// the count, and Check reports the items whose postings were lost.
func TestLogDamagedLeaf(t *testing.T) {
	for _, kind := range []string{"page type", "key size"} {
		t.Run(kind, func(t *testing.T) {
			smallMerges(t, 1<<20)
			db, path := openTest(t)
			for i := range 300 {
				insert(t, db, fmt.Sprintf("a%03d", i), "s")
			}
			db.Close()
			_, _, leaf := secondChild(t, path, bucketRoot(t, path, bucketPlog))
			if kind == "page type" {
				patchPage(t, path, leaf, 8, []byte{0x33, 0})
				if _, err := Open(path, Options{Device: testDevice()}); status.Of(err) != status.Decode {
					t.Fatalf("a log page of the wrong type: Open %v", err)
				}
				return
			}
			patchPage(t, path, leaf, 16+16*2+8, binary.NativeEndian.AppendUint32(nil, 0xFFFFFF))
			db, err := Open(path, Options{Device: testDevice()})
			if err != nil {
				t.Fatalf("a log leaf with a lying element: Open %v", err)
			}
			defer db.Close()
			if n := db.plog.Damaged(); n != 1 {
				t.Fatalf("damaged values: %d, want 1", n)
			}
			found := 0
			for i := range 300 {
				found += len(findAcct(t, db, fmt.Sprintf("a%03d", i)))
			}
			// Where the lying size points decides whether bbolt skips the
			// one value (299 found) or fails part-way (the replay keeps
			// what it read): some items lost, never all.
			if found == 0 || found == 300 {
				t.Fatalf("%d of 300 items found, want some but not all", found)
			}
			insert(t, db, "new", "s")
			mergeLogNow(t, db)
			if n := db.plog.Damaged(); n != 0 {
				t.Fatalf("after the merge dropped the log: %d damaged values", n)
			}
			if got := findAcct(t, db, "new"); len(got) != 1 {
				t.Fatalf("an item added after the damage: %v", got)
			}
			rep, err := db.Check()
			if err != nil {
				t.Fatal(err)
			}
			missing := false
			for _, p := range rep.Problems {
				missing = missing || p.Detail == "an index posting is missing"
			}
			if !missing {
				t.Fatalf("Check does not report the lost postings: %+v", rep.Problems)
			}
		})
	}
}

// The reader set answers the oldest registered commit whether readers sit
// in its slots or, past readerSlots at once, in its overflow map.
func TestReaderSetSlotsAndOverflow(t *testing.T) {
	var s readerSet
	if got := s.oldest(99); got != 99 {
		t.Fatalf("empty set: oldest %d, want the limit 99", got)
	}
	var hs []readerHandle
	for i := range readerSlots + 6 {
		hs = append(hs, s.enter(uint64(50+i)))
	}
	overflowed := 0
	for _, h := range hs {
		if h.slot < 0 {
			overflowed++
		}
	}
	if overflowed != 6 {
		t.Fatalf("%d registrations overflowed, want 6", overflowed)
	}
	if got := s.oldest(1000); got != 50 {
		t.Fatalf("oldest %d, want 50", got)
	}
	// The oldest in a slot leaves: the next oldest counts, including one in
	// the overflow map.
	s.leave(hs[0])
	if got := s.oldest(1000); got != 51 {
		t.Fatalf("after the oldest left: %d, want 51", got)
	}
	for _, h := range hs[1:readerSlots] {
		s.leave(h)
	}
	if got := s.oldest(1000); got != uint64(50+readerSlots) {
		t.Fatalf("only overflowed readers left: %d, want %d", got, 50+readerSlots)
	}
	for _, h := range hs[readerSlots:] {
		s.leave(h)
	}
	if got := s.oldest(1000); got != 1000 {
		t.Fatalf("all left: %d, want the limit", got)
	}
	// A registration under commit 0 counts (slots store since+1).
	h := s.enter(0)
	if got := s.oldest(1000); got != 0 {
		t.Fatalf("a reader since commit 0: oldest %d", got)
	}
	s.leave(h)
}

// A merge takes one slice of the tag space: the slice merged longest ago
// goes to the index and the others stay in the log; the slices take turns;
// a log value goes once every slice has merged past it; and a reopened
// store replays each slice's operations after its mark only, so the table
// is what it was.
func TestLogMergesBySlice(t *testing.T) {
	smallMerges(t, 1<<20)
	db, path := openTest(t)
	for i := range 200 {
		insert(t, db, fmt.Sprintf("a%03d", i), "s")
	}
	table := func(db *DB) (live int, bySlice [logSlices]int) {
		db.plog.mu.RLock()
		defer db.plog.mu.RUnlock()
		for tg, es := range db.plog.tags.all {
			for _, e := range es {
				if e.end == never {
					bySlice[sliceOf(tg)]++
				}
			}
		}
		return db.plog.live, bySlice
	}
	marks := func(db *DB) (m [logSlices]uint64) {
		db.bolt.View(func(btx *bbolt.Tx) error { m = readMarks(btx.Bucket(bucketMeta)); return nil })
		return m
	}
	_, before := table(db)
	if err := db.Update(func(tx *Tx) error { return tx.mergeSlice() }); err != nil {
		t.Fatal(err)
	}
	_, after := table(db)
	m := marks(db)
	if after[0] != 0 || m[0] == 0 {
		t.Fatalf("the first merge: slice 0 has %d live entries left, mark %d", after[0], m[0])
	}
	for s := 1; s < logSlices; s++ {
		if after[s] != before[s] || m[s] != 0 {
			t.Fatalf("the first merge touched slice %d: %d → %d entries, mark %d", s, before[s], after[s], m[s])
		}
	}
	if _, logged := logState(t, db); logged == 0 {
		t.Fatal("values were deleted before every slice merged them")
	}
	// The other slices take their turns; after all of them every value
	// up to the first mark is gone.
	for range logSlices - 1 {
		if err := db.Update(func(tx *Tx) error { return tx.mergeSlice() }); err != nil {
			t.Fatal(err)
		}
	}
	if live, _ := table(db); live != 0 {
		t.Fatalf("after every slice merged: %d live entries", live)
	}
	if _, logged := logState(t, db); logged != 0 {
		t.Fatalf("after every slice merged: %d operations still in the log", logged)
	}
	// New postings, one slice merged, reopen: the table comes back as it was.
	for i := 200; i < 260; i++ {
		insert(t, db, fmt.Sprintf("a%03d", i), "s")
	}
	if err := db.Update(func(tx *Tx) error { return tx.mergeSlice() }); err != nil {
		t.Fatal(err)
	}
	wantLive, wantBy := table(db)
	db.Close()
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if live, by := table(db); live != wantLive || by != wantBy {
		t.Fatalf("reopened: %d live entries %v, want %d %v", live, by, wantLive, wantBy)
	}
	for i := range 260 {
		if got := findAcct(t, db, fmt.Sprintf("a%03d", i)); len(got) != 1 {
			t.Fatalf("a%03d: %v", i, got)
		}
	}
	rep, err := db.Check()
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Check: %v %+v", err, rep.Problems)
	}
}

// A large transaction (a restore, a bulk load) leaves the table within
// its limit: its commit merges as many slices as it takes, not one.
func TestLogLargeCommitMergesEnoughSlices(t *testing.T) {
	smallMerges(t, 40)
	db, _ := openTest(t)
	insertMany(t, db, "bulk", 100, "s")
	db.plog.mu.RLock()
	live := db.plog.live
	db.plog.mu.RUnlock()
	if live > 40 {
		t.Fatalf("after a commit of 100 items the table holds %d live postings, want at most the limit 40", live)
	}
	for i := range 100 {
		if got := findAcct(t, db, fmt.Sprintf("bulk%03d", i)); len(got) != 1 {
			t.Fatalf("bulk%03d: %v", i, got)
		}
	}
}

// A branch key raised past its child's first key sends a search for that
// first key to the leaf before: bbolt's Get (and the map reader of read
// transactions) finds nothing there, while a cursor's Seek steps on to
// the next leaf and finds it. Write transactions must answer as reads do,
// or a read calls an item lost that Add then calls a duplicate (a BI-2
// finding, on a flipped byte).
func TestDamagedBranchKeyReadsAlike(t *testing.T) {
	db, path := openTest(t)
	c := schema.GenericPassword
	insertMany(t, db, "a", 200, strings.Repeat("x", 200))
	db.Close()
	root := bucketRoot(t, path, classBucket(c))
	off, key, _ := secondChild(t, path, root)
	first := binary.BigEndian.Uint64(key)
	patchPage(t, path, root, off, binary.BigEndian.AppendUint64(nil, first+1))
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Skipf("Open refused the damage: %v", err)
	}
	defer db.Close()
	var read, written []byte
	db.View(func(tx *Tx) error { read = tx.getRow(c, first); return nil })
	db.Update(func(tx *Tx) error {
		items, err := tx.items(c)
		if err == nil {
			written = tx.get(items, rowKey(first))
		}
		return errors.New("look only")
	})
	if (read == nil) != (written == nil) {
		t.Fatalf("row %d behind a damaged branch key: a read finds %d bytes, a write transaction %d", first, len(read), len(written))
	}
}
