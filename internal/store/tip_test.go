package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// downgrade rewrites a closed store of the current format as format f (1
// or 2): the tip's values go back to meta, its chunk to vers, and the tip
// goes; format 1 has no posting log either (merge it first).
func downgrade(t *testing.T, path string, f byte) {
	t.Helper()
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		meta, tip := btx.Bucket(bucketMeta), btx.Bucket(bucketTip)
		for _, k := range [][]byte{keyGeneration, keyVRoot} {
			if v := tip.Get(k); v != nil {
				if err := meta.Put(k, bytes.Clone(v)); err != nil {
					return err
				}
			}
		}
		if err := meta.SetSequence(tip.Sequence()); err != nil {
			return err
		}
		if n, v, ok := tailOf(btx); ok {
			if err := btx.Bucket(bucketVers).Put(binary.BigEndian.AppendUint64(nil, n), bytes.Clone(v)); err != nil {
				return err
			}
		}
		if err := btx.DeleteBucket(bucketTip); err != nil {
			return err
		}
		if f == 1 {
			if err := btx.DeleteBucket(bucketPlog); err != nil {
				return err
			}
		}
		return meta.Put(keyFormat, []byte{f})
	})
}

// storeFormat returns the format a closed store's meta names and which of
// the log's bucket and the tip it has.
func storeFormat(t *testing.T, path string) (f byte, hasLog, hasTip bool) {
	t.Helper()
	boltView(t, path, func(btx *bbolt.Tx) {
		f = btx.Bucket(bucketMeta).Get(keyFormat)[0]
		hasLog = btx.Bucket(bucketPlog) != nil
		hasTip = btx.Bucket(bucketTip) != nil
	})
	return f, hasLog, hasTip
}

// Stores of formats 1 (postings in the index only, no log) and 2 (the
// version root, generation and row sequence in meta, every version chunk
// in vers) open and read as they are; their first commit moves those
// values to the tip and makes them format 3, keeping the generation and
// never reusing a row. A format this version does not know is refused,
// and so is a format-3 store without its tip.
func TestOldFormatsOpen(t *testing.T) {
	for _, f := range []byte{1, 2} {
		t.Run(fmt.Sprintf("format%d", f), func(t *testing.T) {
			db, path := openTest(t)
			var rows []uint64
			for i := range 70 { // two chunks
				rows = append(rows, insert(t, db, fmt.Sprint("old", i), "s").Row)
			}
			mergeLogNow(t, db)
			gen, err := db.Generation()
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			downgrade(t, path, f)

			db = reopen(t, path)
			if g, err := db.Generation(); err != nil || g != gen {
				t.Fatalf("format %d: generation %d %v, want %d", f, g, err, gen)
			}
			for i, row := range rows {
				if got := findAcct(t, db, fmt.Sprint("old", i)); !slices.Equal(got, []uint64{row}) {
					t.Fatalf("format %d: old%d at %v, want row %d", f, i, got, row)
				}
				if got, st := read(db, row); st != status.OK || got != "s" {
					t.Fatalf("format %d: row %d reads %v", f, row, st)
				}
			}
			if err := db.Update(func(tx *Tx) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if g, err := db.Generation(); err != nil || g != gen+1 {
				t.Fatalf("after the first commit: generation %d %v, want %d", g, err, gen+1)
			}
			r := insert(t, db, "new", "s")
			if r.Row != rows[len(rows)-1]+1 {
				t.Fatalf("new row %d, want %d (rows are never reused)", r.Row, rows[len(rows)-1]+1)
			}
			// A rewrite of a row in vers, after the tip took a chunk.
			rewrite(t, db, rows[0], "old0", "s2")
			db.Close()
			if got, _, hasTip := storeFormat(t, path); got != FormatVersion || !hasTip {
				t.Fatalf("after commits: format %d, tip %v", got, hasTip)
			}
			db = reopen(t, path)
			if !db.rootMatches || len(db.badChunks) != 0 {
				t.Fatalf("version table after the upgrade: root %v, bad %v", db.rootMatches, db.badChunks)
			}
			if got, st := read(db, rows[0]); st != status.OK || got != "s2" {
				t.Fatalf("rewritten row reads %v", st)
			}
			if rep, err := db.Check(); err != nil || len(rep.Problems) != 0 {
				t.Fatalf("Check: %v %v", err, rep.Problems)
			}
		})
	}

	db, path := openTest(t)
	db.Close()
	boltUpdate(t, path, func(btx *bbolt.Tx) error { return btx.Bucket(bucketMeta).Put(keyFormat, []byte{FormatVersion + 1}) })
	if _, err := Open(path, Options{Device: testDevice()}); status.Of(err) != status.Decode {
		t.Fatalf("format %d: %v", FormatVersion+1, err)
	}
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		if err := btx.DeleteBucket(bucketTip); err != nil {
			return err
		}
		return btx.Bucket(bucketMeta).Put(keyFormat, []byte{FormatVersion})
	})
	if _, err := Open(path, Options{Device: testDevice()}); status.Of(err) != status.Decode || !strings.Contains(err.Error(), "tip") {
		t.Fatalf("format %d without its tip: %v", FormatVersion, err)
	}
}

// rewrite replaces the secret of the item at row (account acct).
func rewrite(t *testing.T, db *DB, row uint64, acct, secret string) {
	t.Helper()
	f, s := item(acct, secret)
	err := db.Update(func(tx *Tx) error {
		r, err := tx.ByPrimaryKey(schema.GenericPassword, f)
		if err != nil {
			return err
		}
		if r == nil || r.Row != row {
			return fmt.Errorf("%s is not at row %d", acct, row)
		}
		_, _, err = tx.Rewrite(r, f, s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The tip rides inline in the root page, so an Add whose row is in the
// tip's chunk and whose postings fit the log's tail rewrites no page of
// meta, vers or the log's bucket: their root pages stay where they were.
// (Format 2 rewrote all three on every commit: the generation, version
// root and row sequence were in meta, the chunk in vers, the operations
// in the log.)
func TestTipSparesMetaVersAndLog(t *testing.T) {
	db, _ := openTest(t)
	for i := range 200 { // three chunks in vers, so vers has pages of its own
		insert(t, db, fmt.Sprint("u", i), "s")
	}
	// Padding, so meta is not inline itself (as with a large keybag),
	// and an empty tail.
	if err := db.Update(func(tx *Tx) error {
		if err := tx.logToTip(nil, true); err != nil {
			return err
		}
		return tx.btx.Bucket(bucketMeta).Put([]byte("padding"), make([]byte, 2000))
	}); err != nil {
		t.Fatal(err)
	}
	roots := func() (meta, vers, log, tip uint64, inline bool) {
		db.bolt.View(func(btx *bbolt.Tx) error {
			meta, vers = uint64(btx.Bucket(bucketMeta).Root()), uint64(btx.Bucket(bucketVers).Root())
			log = uint64(btx.Bucket(bucketPlog).Root())
			tip = uint64(btx.Bucket(bucketTip).Root())
			inline = btx.Bucket(bucketTip).Stats().InlineBucketN == 1
			return nil
		})
		return
	}
	m0, v0, l0, tip, inline := roots()
	if m0 == 0 || v0 == 0 || l0 == 0 {
		t.Fatalf("meta (page %d), vers (page %d) and the log (page %d) should have pages of their own", m0, v0, l0)
	}
	if tip != 0 || !inline {
		t.Fatalf("the tip is not inline (root page %d)", tip)
	}
	st := db.bolt.Stats()
	before := st.TxStats.GetWrite()
	insert(t, db, "next", "s")
	st = db.bolt.Stats()
	writes := st.TxStats.GetWrite() - before
	if m1, v1, l1, _, _ := roots(); m1 != m0 || v1 != v0 || l1 != l0 {
		t.Fatalf("an Add rewrote meta (page %d → %d), vers (%d → %d) or the log (%d → %d)", m0, m1, v0, v1, l0, l1)
	}
	t.Logf("pages written by one Add: %d", writes)
}

// Chunks live in one place: the newest in the tip, the others in vers.
// An Add past the tip's chunk moves it to vers; a rewrite of an old row
// changes its chunk in vers. Damage to either is noticed, and Check
// names a chunk found in both places.
func TestVersionTail(t *testing.T) {
	db, path := openTest(t)
	var rows []uint64
	for i := range 150 {
		rows = append(rows, insert(t, db, fmt.Sprint("u", i), "s").Row)
	}
	last := rows[len(rows)-1]
	placement := func() (tail uint64, inVers []uint64) {
		db.bolt.View(func(btx *bbolt.Tx) error {
			n, _, ok := tailOf(btx)
			if !ok {
				t.Fatal("no chunk in the tip")
			}
			tail = n
			return btx.Bucket(bucketVers).ForEach(func(k, _ []byte) error {
				inVers = append(inVers, binary.BigEndian.Uint64(k))
				return nil
			})
		})
		return
	}
	tail, inVers := placement()
	if tail != last/chunkRows || !slices.Equal(inVers, []uint64{0, 1}) {
		t.Fatalf("tip holds chunk %d, vers %v; want %d and [0 1]", tail, inVers, last/chunkRows)
	}
	rewrite(t, db, rows[0], "u0", "s2")
	if tail2, inVers2 := placement(); tail2 != tail || !slices.Equal(inVers2, inVers) {
		t.Fatalf("a rewrite of row %d moved chunks: tip %d, vers %v", rows[0], tail2, inVers2)
	}
	db.Close()

	db = reopen(t, path)
	if !db.rootMatches || len(db.badChunks) != 0 {
		t.Fatalf("root %v, bad chunks %v", db.rootMatches, db.badChunks)
	}
	if got, st := read(db, rows[0]); st != status.OK || got != "s2" {
		t.Fatalf("row %d: %v", rows[0], st)
	}
	db.Close()

	// Damage to the tip's chunk makes its rows unreadable, and only them.
	k := binary.BigEndian.AppendUint64(nil, tail)
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		c := getChunk(btx, k)
		c[len(c)-1] ^= 1
		return putChunk(btx, k, c)
	})
	db = reopen(t, path)
	if _, st := read(db, last); st != status.Decode {
		t.Fatalf("row %d in a damaged tip chunk: %v", last, st)
	}
	if got, st := read(db, rows[0]); st != status.OK || got != "s2" {
		t.Fatalf("row %d in vers: %v", rows[0], st)
	}
	db.Close()

	// A copy of the tip's chunk in vers as well: Check names it.
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		return btx.Bucket(bucketVers).Put(k, getChunk(btx, k))
	})
	db = reopen(t, path)
	defer db.Close()
	rep, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	var twice bool
	for _, p := range rep.Problems {
		twice = twice || strings.Contains(p.Detail, "stored twice")
	}
	if !twice {
		t.Fatalf("Check missed a chunk stored twice: %v", rep.Problems)
	}
}

// logValues returns the number of values in the log's bucket and the
// operations in the tip's tail.
func logValues(t *testing.T, db *DB) (values, tailOps int) {
	t.Helper()
	db.bolt.View(func(btx *bbolt.Tx) error {
		if b := btx.Bucket(bucketPlog); b != nil {
			values = b.Stats().KeyN
		}
		tailOps = len(btx.Bucket(bucketTip).Get(keyLogTail)) / logOpSize
		return nil
	})
	return values, tailOps
}

// A commit's posting operations wait in the tip's tail until the next
// would outgrow it; then tail and operations become one value of the
// log. The tail is replayed at Open after the log's values, and is made
// a value of the log before a merge, whose marks then cover it.
func TestLogTail(t *testing.T) {
	smallMerges(t, 1<<20)
	db, path := openTest(t)
	rows := map[string]uint64{}
	add := func(acct string) {
		rows[acct] = insert(t, db, acct, "s").Row
	}
	add("a0")
	v0, ops := logValues(t, db)
	if ops == 0 || v0 != 0 {
		t.Fatalf("one Add: %d values, %d operations in the tail; want none and some", v0, ops)
	}
	perAdd := ops
	i := 1
	for ; ops+perAdd <= maxLogTail/logOpSize; i++ {
		add(fmt.Sprint("a", i))
		v, n := logValues(t, db)
		if v != 0 || n != ops+perAdd {
			t.Fatalf("Add %d: %d values, %d operations in the tail", i, v, n)
		}
		ops = n
	}
	add(fmt.Sprint("a", i))
	if v, n := logValues(t, db); v != 1 || n != 0 {
		t.Fatalf("the Add that outgrew the tail: %d values, %d in the tail; want 1 and 0", v, n)
	}
	add("b")
	found := func(db *DB, when string) {
		t.Helper()
		for acct, row := range rows {
			if got := findAcct(t, db, acct); !slices.Equal(got, []uint64{row}) {
				t.Fatalf("%s: %s at %v, want %d", when, acct, got, row)
			}
		}
	}
	found(db, "before a reopen")
	db.Close()
	db = reopen(t, path)
	found(db, "after a reopen")

	// Merges with operations in the tail: they go to the log first, so
	// the marks cover them and Open does not replay them as still logged
	// (a removal would then leave their postings in the index).
	if _, n := logValues(t, db); n == 0 {
		t.Fatal("no operations in the tail before the merges")
	}
	err := db.Update(func(tx *Tx) error {
		for range logSlices {
			if err := tx.mergeSlice(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, n := logValues(t, db); n != 0 {
		t.Fatalf("%d operations left in the tail by a merge", n)
	}
	add("c")
	db.Close()
	db = reopen(t, path)
	found(db, "after the merges and a reopen")
	if rep, err := db.Check(); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Check: %v %v", err, rep.Problems)
	}
	err = db.Update(func(tx *Tx) error {
		var all []*Record
		err := tx.Find(Query{Class: schema.GenericPassword}, func(r *Record) (bool, error) {
			all = append(all, r)
			return true, nil
		})
		for _, r := range all {
			if err == nil {
				err = tx.Delete(r)
			}
		}
		if err == nil && len(all) != len(rows) {
			err = fmt.Errorf("found %d items, want %d", len(all), len(rows))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := db.Check(); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("Check after deleting every item: %v %v", err, rep.Problems)
	}
}

// A damaged tail is skipped whole at Open and counted, like a damaged
// value of the log; the next commit drops it instead of carrying its
// bytes into the log, and a rewrite posts the lost item again.
func TestLogTailDamaged(t *testing.T) {
	smallMerges(t, 1<<20)
	db, path := openTest(t)
	a := insert(t, db, "a", "s")
	db.Close()
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		tip := btx.Bucket(bucketTip)
		v := bytes.Clone(tip.Get(keyLogTail))
		return tip.Put(keyLogTail, v[:len(v)-3])
	})
	db = reopen(t, path)
	if n := db.plog.Damaged(); n != 1 {
		t.Fatalf("damaged values at Open: %d", n)
	}
	if got := findAcct(t, db, "a"); len(got) != 0 {
		t.Fatalf("a damaged tail's postings were believed: %v", got)
	}
	b := insert(t, db, "b", "s")
	if _, n := logValues(t, db); n == 0 || n > maxLogTail/logOpSize {
		t.Fatalf("tail after the next Add: %d operations", n)
	}
	if n := db.plog.Damaged(); n != 0 {
		t.Fatalf("damaged values once the tail was dropped: %d", n)
	}
	f, s := item("a", "s2")
	if err := db.Update(func(tx *Tx) error { _, _, err := tx.Rewrite(a, f, s); return err }); err != nil {
		t.Fatal(err)
	}
	for acct, row := range map[string]uint64{"a": a.Row, "b": b.Row} {
		if got := findAcct(t, db, acct); !slices.Equal(got, []uint64{row}) {
			t.Fatalf("%s at %v, want %d", acct, got, row)
		}
	}
	db.Close()
	db = reopen(t, path)
	if n := db.plog.Damaged(); n != 0 {
		t.Fatalf("damaged values after the tail was rewritten: %d", n)
	}
}

// At its fullest (generation, root, a chunk and a tail of maxLogTail
// bytes) the tip is still inline on 4 KiB pages.
func TestTipFitsInline(t *testing.T) {
	db, _ := openTest(t)
	insert(t, db, "a", "s")
	if ps := db.bolt.Info().PageSize; ps != 4096 {
		t.Skipf("page size %d", ps)
	}
	err := db.bolt.Update(func(btx *bbolt.Tx) error {
		tip := btx.Bucket(bucketTip)
		if _, _, ok := tailOf(btx); !ok || tip.Get(keyGeneration) == nil || tip.Get(keyVRoot) == nil {
			t.Fatal("the tip lacks a chunk, the generation or the root")
		}
		tail := bytes.Repeat(append([]byte{opPost}, make([]byte, logOpSize-1)...), maxLogTail/logOpSize)
		return tip.Put(keyLogTail, tail)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.bolt.View(func(btx *bbolt.Tx) error {
		tip := btx.Bucket(bucketTip)
		if st := tip.Stats(); tip.Root() != 0 || st.InlineBucketN != 1 {
			t.Fatalf("a full tip has a page of its own (root %d)", tip.Root())
		}
		return nil
	})
}
