package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// directFixture builds a bbolt file whose bucket "idx" holds n random keys
// (1 to 48 bytes) with values of 0 to 9,000 bytes (some on overflow
// pages), in several commits with deletions, so the tree has branch
// levels, split and merged pages; it returns the file and the keys kept.
func directFixture(t *testing.T, n int, seed uint64) (*bbolt.DB, map[string][]byte) {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "d.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	rng := mrand.New(mrand.NewPCG(seed, 1))
	kept := map[string][]byte{}
	for round := 0; round < 4; round++ {
		err := db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bucketIndex)
			if err != nil {
				return err
			}
			for i := 0; i < n/4; i++ {
				k := make([]byte, 1+rng.IntN(48))
				for j := range k {
					k[j] = byte(rng.IntN(4)) // a small alphabet: shared prefixes
				}
				size := rng.IntN(300)
				if rng.IntN(50) == 0 {
					size = 4000 + rng.IntN(5000)
				}
				v := make([]byte, size)
				for j := range v {
					v[j] = byte(rng.Uint32())
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
				kept[string(k)] = v
			}
			// Delete a run of keys, so some pages merge.
			c := b.Cursor()
			k, _ := c.Seek([]byte{byte(round)})
			for i := 0; i < n/20 && k != nil; i++ {
				delete(kept, string(k))
				if err := c.Delete(); err != nil {
					return err
				}
				k, _ = c.Next()
				if k == nil {
					break
				}
				k, _ = c.Seek(k)
			}
			_, err = tx.CreateBucketIfNotExists([]byte("inline"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return db, kept
}

// TestDirectMatchesBbolt compares the map reader with bbolt's own cursor
// on the same read transaction: every kept key, keys that are not there,
// seeks between keys, and walks of Next to the end.
func TestDirectMatchesBbolt(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		db, kept := directFixture(t, 8000, seed)
		rng := mrand.New(mrand.NewPCG(seed, 2))
		err := db.View(func(btx *bbolt.Tx) error {
			b := btx.Bucket(bucketIndex)
			if b.Root() == 0 {
				t.Fatal("fixture bucket is inline")
			}
			m := mapOf(btx)
			root := uint64(b.Root())
			for k, v := range kept {
				if got := m.get(root, []byte(k)); !bytes.Equal(got, v) {
					t.Fatalf("seed %d: get of a kept key: %d bytes, want %d", seed, len(got), len(v))
				}
			}
			mc := &mcursor{m: &m, root: root}
			if mc.Seek(nil); mc.n < 3 {
				t.Fatalf("seed %d: the fixture's tree is %d levels deep, want 3 or more", seed, mc.n)
			}
			bc := b.Cursor()
			for i := 0; i < 3000; i++ {
				probe := make([]byte, rng.IntN(50))
				for j := range probe {
					probe[j] = byte(rng.IntN(5))
				}
				if got, want := m.get(root, probe), b.Get(probe); !bytes.Equal(got, want) || (got == nil) != (want == nil) {
					t.Fatalf("seed %d: get %x: %d bytes, bbolt %d", seed, probe, len(got), len(want))
				}
				k1, v1 := mc.Seek(probe)
				k2, v2 := bc.Seek(probe)
				for step := 0; ; step++ {
					if !bytes.Equal(k1, k2) || !bytes.Equal(v1, v2) || (k1 == nil) != (k2 == nil) {
						t.Fatalf("seed %d: seek %x, step %d: key %x, bbolt %x", seed, probe, step, k1, k2)
					}
					if k1 == nil || step == 20 {
						break
					}
					k1, v1 = mc.Next()
					k2, v2 = bc.Next()
				}
			}
			// A whole walk from the start visits exactly the kept keys.
			n := 0
			for k, v := mc.Seek(nil); k != nil; k, v = mc.Next() {
				if want, ok := kept[string(k)]; !ok || !bytes.Equal(v, want) {
					t.Fatalf("seed %d: the walk found key %x that is not kept", seed, k)
				}
				n++
			}
			if n != len(kept) {
				t.Fatalf("seed %d: the walk found %d keys, want %d", seed, n, len(kept))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestDirectRefusesDamagedPages damages the pages a lookup goes through
// (header id, type, element count, an element's offset) and requires the
// direct reader to report errDamagedPage, never to read outside the map
// or return bytes from the wrong place. (The lookup is of the empty key,
// so the search ends at element 0, the one whose offset is damaged.)
func TestDirectRefusesDamagedPages(t *testing.T) {
	damages := []struct {
		name string
		off  int // within the page
		set  func(b []byte)
	}{
		{"header id", 0, func(b []byte) { b[0] ^= 0xff }},
		{"page type", 8, func(b []byte) { b[0] = 0x32 }},
		{"element count", 10, func(b []byte) { binary.NativeEndian.PutUint16(b, 0xffff) }},
		{"element offset", 16 + 4, func(b []byte) { binary.NativeEndian.PutUint32(b, 0x7fffffff) }},
	}
	for _, d := range damages {
		t.Run(d.name, func(t *testing.T) {
			db, kept := directFixture(t, 2000, 7)
			var root uint64
			var ps int
			db.View(func(btx *bbolt.Tx) error {
				root, ps = uint64(btx.Bucket(bucketIndex).Root()), db.Info().PageSize
				return nil
			})
			path := db.Path()
			db.Close()
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			off := int64(root)*int64(ps) + int64(d.off)
			f.ReadAt(buf, off)
			d.set(buf)
			f.WriteAt(buf, off)
			f.Close()
			db2, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			// The empty key: the search ends at element 0, the one damaged.
			k := []byte{}
			if len(kept) == 0 {
				t.Fatal("empty fixture")
			}
			err = db2.View(func(btx *bbolt.Tx) (err error) {
				defer func() {
					if r := recover(); r != nil {
						if _, ok := r.(errDamagedPage); !ok {
							t.Fatalf("panic %v, want errDamagedPage", r)
						}
						err = errors.New("damaged")
					}
				}()
				m := mapOf(btx)
				m.get(root, k)
				return nil
			})
			if err == nil {
				t.Fatalf("a lookup through the damaged root page succeeded")
			}
		})
	}
}

// TestDirectReadsOnStore checks that the store's read transactions take
// the direct path (no bucket handle is opened for a lookup by row), and
// that a damaged page under a read is errSecDecode for the call.
func TestDirectReadsOnStore(t *testing.T) {
	db, _ := openTest(t)
	c := schema.GenericPassword
	var rows []uint64
	for i := 0; i < 300; i++ {
		rows = append(rows, insert(t, db, fmt.Sprintf("acct-%d", i), "s").Row)
	}
	err := db.View(func(tx *Tx) error {
		for _, row := range rows {
			if tx.getRow(c, row) == nil {
				t.Fatalf("row %d not found", row)
			}
		}
		if tx.bItems[0] != nil || tx.bVers != nil || tx.bIndex != nil {
			t.Fatal("a read transaction opened bucket handles for lookups by row")
		}
		if tx.roots == nil || tx.roots.roots[refItems] == 0 {
			t.Fatal("no direct roots for the genp bucket")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The same lookups with the root pointing at a page of another kind:
	// the map reader gives up and bbolt answers.
	err = db.View(func(tx *Tx) error {
		tx.direct(refItems)
		bad := *tx.roots
		bad.roots[refItems] = 1 // a meta page
		tx.roots = &bad
		for _, row := range rows {
			want := tx.btx.Bucket(classBucket(c)).Get(rowKey(row))
			if got := tx.getRow(c, row); want == nil || !bytes.Equal(got, want) {
				t.Fatalf("row %d through the fallback: %d bytes, bbolt %d", row, len(got), len(want))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("lookup past a damaged page: %v", err)
	}
}

// TestDirectFallsBackToBbolt damages pages in a way bbolt does not look at
// (a leaf's overflow count) but the map reader refuses, and requires
// seeks and whole walks that meet them, before or in the middle of a
// walk, to answer as bbolt does.
func TestDirectFallsBackToBbolt(t *testing.T) {
	db, kept := directFixture(t, 4000, 11)
	var leaves []uint64
	var ps int
	db.View(func(btx *bbolt.Tx) error {
		ps = db.Info().PageSize
		m := mapOf(btx)
		c := &mcursor{m: &m, root: uint64(btx.Bucket(bucketIndex).Root())}
		for k, _ := c.Seek(nil); k != nil; k, _ = c.Next() {
			if id := c.stack[c.n-1].page; len(leaves) == 0 || leaves[len(leaves)-1] != id {
				leaves = append(leaves, id)
			}
		}
		return nil
	})
	if len(leaves) < 10 {
		t.Fatalf("fixture has %d leaves", len(leaves))
	}
	path := db.Path()
	db.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var damagedLeaves int
	for i := 1; i < len(leaves); i += 3 {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], 0xfffffff0)
		f.WriteAt(b[:], int64(leaves[i])*int64(ps)+12)
		damagedLeaves++
	}
	f.Close()
	db2, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	rng := mrand.New(mrand.NewPCG(11, 3))
	err = db2.View(func(btx *bbolt.Tx) error {
		tx := &Tx{btx: btx}
		m := mapOf(btx)
		root := uint64(btx.Bucket(bucketIndex).Root())
		// Whole walk: every kept key, in order, across damaged leaves.
		c := new(mcursor)
		c.reset(tx, &m, refIndex, root)
		n := 0
		for k, v := c.Seek(nil); k != nil; k, v = c.Next() {
			if want, ok := kept[string(k)]; !ok || !bytes.Equal(v, want) {
				t.Fatalf("the walk found key %x that is not kept", k)
			}
			n++
		}
		if n != len(kept) || c.fb == nil {
			t.Fatalf("walk: %d keys of %d, fell back: %v", n, len(kept), c.fb != nil)
		}
		// Seeks and short walks from fresh cursors, against bbolt's.
		bc := btx.Bucket(bucketIndex).Cursor()
		for i := 0; i < 2000; i++ {
			probe := make([]byte, rng.IntN(50))
			for j := range probe {
				probe[j] = byte(rng.IntN(5))
			}
			c.reset(tx, &m, refIndex, root)
			k1, v1 := c.Seek(probe)
			k2, v2 := bc.Seek(probe)
			for step := 0; ; step++ {
				if !bytes.Equal(k1, k2) || !bytes.Equal(v1, v2) || (k1 == nil) != (k2 == nil) {
					t.Fatalf("seek %x, step %d: key %x, bbolt %x", probe, step, k1, k2)
				}
				if k1 == nil || step == 40 {
					break
				}
				k1, v1 = c.Next()
				k2, v2 = bc.Next()
			}
			if v, ok := m.tryGet(root, probe); ok && !bytes.Equal(v, btx.Bucket(bucketIndex).Get(probe)) {
				t.Fatalf("get %x: differs from bbolt", probe)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d leaves damaged; walks and seeks agreed with bbolt", damagedLeaves, len(leaves))
}

// TestDirectCycleFailsTheCall makes a branch page of a live store point to
// itself (damage after Open, which checked the tree when it opened). The
// map reader must fail the read with errSecDecode, not hand the cycle to
// bbolt, whose recursive search would overflow the goroutine's stack.
func TestDirectCycleFailsTheCall(t *testing.T) {
	db, path := openTest(t)
	c := schema.GenericPassword
	var rows []uint64
	for i := 0; i < 400; i++ {
		rows = append(rows, insert(t, db, fmt.Sprintf("acct-%d", i), strings.Repeat("s", 200)).Row)
	}
	var root uint64
	var ps int
	db.View(func(tx *Tx) error {
		root, ps = uint64(tx.btx.Bucket(classBucket(c)).Root()), tx.db.bolt.Info().PageSize
		m := mapOf(tx.btx)
		if isLeaf(m.page(root)) {
			t.Fatal("the genp bucket's root is a leaf; the fixture needs a branch")
		}
		return nil
	})
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], root)
	if _, err := f.WriteAt(b[:], int64(root)*int64(ps)+16+8); err != nil { // element 0's child
		t.Fatal(err)
	}
	f.Close()
	err = db.View(func(tx *Tx) error {
		tx.getRow(c, rows[0])
		return nil
	})
	if status.Of(err) != status.Decode {
		t.Fatalf("a read through a cycle of pages: %v, want errSecDecode", err)
	}
	// The same through a map cursor: the panic is not a fallback.
	db.View(func(tx *Tx) error {
		m := mapOf(tx.btx)
		mc := new(mcursor)
		mc.reset(tx, &m, refItems, root)
		defer func() {
			if _, ok := recover().(errTreeTooDeep); !ok {
				t.Fatal("a map cursor met a cycle and did not stop with errTreeTooDeep")
			}
		}()
		mc.Seek(nil)
		return nil
	})
}

// TestWriteTxIndexDirect checks the direct index lookups of a write
// transaction: they run while it has not changed the index, they find the
// committed postings (an Add's uniqueness probe), and once it changes the
// index (a removal, a merge) its lookups go through bbolt. The merge is
// the case that shows the lookups see the change: after a removal the
// record is gone too, and candidates are checked against their records,
// so a stale posting would be skipped either way (the cursor's kind is
// what that case checks).
func TestWriteTxIndexDirect(t *testing.T) {
	db, _ := openTest(t)
	c := schema.GenericPassword
	insertMany(t, db, "a", 300, "s") // enough postings for the index to leave its root page
	mergeLogNow(t, db)
	f, _ := item("a007", "s")
	g, _ := item("a123", "s")
	err := db.Update(func(tx *Tx) error {
		if cur := tx.indexCursor(); true {
			_, direct := cur.(*mcursor)
			tx.releaseCursor(cur)
			if !direct {
				t.Fatal("a write transaction that has not changed the index does not read it directly")
			}
		}
		r, err := tx.ByPrimaryKey(c, f)
		if err != nil || r == nil {
			t.Fatalf("direct probe: %v, %v; want the item", r, err)
		}
		if err := tx.Delete(r); err != nil {
			t.Fatal(err)
		}
		if cur := tx.indexCursor(); true {
			_, direct := cur.(*mcursor)
			tx.releaseCursor(cur)
			if direct {
				t.Fatal("after removing postings from the index, lookups still read the committed pages")
			}
		}
		if r, err := tx.ByPrimaryKey(c, f); err != nil || r != nil {
			t.Fatalf("after the delete: %v, %v; want none", r, err)
		}
		if r, err := tx.ByPrimaryKey(c, g); err != nil || r == nil {
			t.Fatalf("another item after the delete: %v, %v; want it", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A merge in a write transaction: the merged postings are found.
	insertMany(t, db, "b", 50, "s")
	h, _ := item("b042", "s")
	err = db.Update(func(tx *Tx) error {
		if err := tx.mergeLog(); err != nil {
			return err
		}
		if !tx.indexWritten {
			t.Fatal("a merge did not mark the index changed")
		}
		r, err := tx.ByPrimaryKey(c, h)
		if err != nil || r == nil {
			t.Fatalf("after a merge in the transaction: %v, %v; want the item", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIndexWritesMarkTheTransaction checks the rule direct lookups in a
// write transaction rest on: every path that changes the index (or
// replaces its bucket) marks the transaction, so its later lookups go
// through bbolt.
func TestIndexWritesMarkTheTransaction(t *testing.T) {
	db, _ := openTest(t)
	recs := insertMany(t, db, "a", 40, "s")
	mergeLogNow(t, db)
	for _, tc := range []struct {
		name   string
		change func(tx *Tx) error
	}{
		{"a removal from the index (unpost)", func(tx *Tx) error { return tx.Delete(recs[0]) }},
		{"a row whose header is unreadable (removeAllPostings)", func(tx *Tx) error { return tx.removeAllPostings(recs[1].Row) }},
		{"a merge (putMerged)", func(tx *Tx) error { return tx.putMerged(allSlices) }},
		{"replaced buckets (forgetBuckets)", func(tx *Tx) error { tx.forgetBuckets(); return nil }},
	} {
		err := db.Update(func(tx *Tx) error {
			if tx.indexWritten {
				t.Fatalf("%s: a new write transaction is already marked", tc.name)
			}
			if err := tc.change(tx); err != nil {
				return err
			}
			if !tx.indexWritten {
				t.Fatalf("%s: the transaction is not marked as having changed the index", tc.name)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
}
