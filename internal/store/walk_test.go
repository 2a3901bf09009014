package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// patchPage rewrites a few bytes of page id in the closed store at path.
func patchPage(t *testing.T, path string, id uint64, off int, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(id)*int64(os.Getpagesize())+int64(off)); err != nil {
		t.Fatal(err)
	}
}

// indexRoot returns the root page of the index bucket (with enough
// postings it is a branch page).
func indexRoot(t *testing.T, path string) uint64 {
	t.Helper()
	var root uint64
	boltView(t, path, func(btx *bbolt.Tx) { root = uint64(btx.Bucket(bucketIndex).Root()) })
	return root
}

// boltView runs fn in a read transaction of the closed store at path,
// opened with bbolt alone.
func boltView(t *testing.T, path string, fn func(*bbolt.Tx)) {
	t.Helper()
	bdb, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	bdb.View(func(btx *bbolt.Tx) error { fn(btx); return nil })
}

func storeWith(t *testing.T, n int) string {
	t.Helper()
	db, path := openTest(t)
	for i := 0; i < n; i++ {
		insert(t, db, "user-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26%26)), "s")
	}
	mergeLogNow(t, db) // the postings in the index, a tree of several pages
	db.Close()
	return path
}

func walkClosed(t *testing.T, path string) ([]string, bool) {
	t.Helper()
	var txid uint64
	boltView(t, path, func(btx *bbolt.Tx) { txid = uint64(btx.ID()) })
	return walkTree(path, txid, 100)
}

func TestWalkCleanStore(t *testing.T) {
	path := storeWith(t, 300)
	if problems, sound := walkClosed(t, path); len(problems) != 0 || !sound {
		t.Fatalf("a clean store: %v (sound %v)", problems, sound)
	}
}

// A damaged overflow count (bbolt's own checker loops on it for hours)
// is found at once.
func TestWalkHugeOverflow(t *testing.T) {
	path := storeWith(t, 300)
	root := indexRoot(t, path)
	patchPage(t, path, root, 12, binary.NativeEndian.AppendUint32(nil, 0xFFFFFFF0))
	start := time.Now()
	problems, sound := walkClosed(t, path)
	if sound || len(problems) == 0 || !strings.Contains(strings.Join(problems, "\n"), "overflow") {
		t.Fatalf("problems %v, sound %v", problems, sound)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the walk took %v", time.Since(start))
	}
}

// A branch element pointing back at its own page is a cycle: reported,
// and the tree is not iterated.
func TestWalkCycle(t *testing.T) {
	path := storeWith(t, 600)
	root := indexRoot(t, path)
	head := make([]byte, 16)
	f, _ := os.Open(path)
	f.ReadAt(head, int64(root)*int64(os.Getpagesize()))
	f.Close()
	if binary.NativeEndian.Uint16(head[8:])&flagBranch == 0 {
		t.Skip("the index root is not a branch page")
	}
	// The first branch element's child page id, at element offset 8.
	patchPage(t, path, root, 16+8, binary.NativeEndian.AppendUint64(nil, root))
	problems, sound := walkClosed(t, path)
	if sound || !strings.Contains(strings.Join(problems, "\n"), "reached twice") {
		t.Fatalf("problems %v, sound %v", problems, sound)
	}
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		return // refused at Open: fine too
	}
	defer db.Close()
	rep, err := db.Check()
	if err != nil || len(rep.Problems) == 0 {
		t.Fatalf("Check on a cyclic tree: %v, %d problems", err, len(rep.Problems))
	}
}

// bbolt treats a page as a leaf only when its flags are exactly the leaf
// flag, and reads a branch's first element whatever its count says, so a
// page with stray flag bits, or an empty branch, sends a cursor into
// whatever bytes it finds (a fuzz finding looped forever there). Open and
// the walk both refuse such a tree.
func TestWalkStrayFlagsAndEmptyBranch(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch func(t *testing.T, path string, root uint64)
		want  string
	}{
		{"stray flag bits", func(t *testing.T, path string, root uint64) {
			head := make([]byte, 16)
			f, _ := os.Open(path)
			f.ReadAt(head, int64(root)*int64(os.Getpagesize()))
			f.Close()
			flags := binary.NativeEndian.Uint16(head[8:]) | 0x30
			patchPage(t, path, root, 8, binary.NativeEndian.AppendUint16(nil, flags))
		}, "where a branch or leaf page belongs"},
		{"empty branch", func(t *testing.T, path string, root uint64) {
			patchPage(t, path, root, 8, binary.NativeEndian.AppendUint16(binary.NativeEndian.AppendUint16(nil, flagBranch), 0))
		}, "has no elements"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := storeWith(t, 300)
			tc.patch(t, path, indexRoot(t, path))
			problems, sound := walkClosed(t, path)
			if sound || !strings.Contains(strings.Join(problems, "\n"), tc.want) {
				t.Fatalf("problems %v, sound %v", problems, sound)
			}
			if db, err := Open(path, Options{Device: testDevice()}); err == nil {
				db.Close()
				t.Fatal("Open accepted a tree a cursor would loop in")
			}
		})
	}
}

// A damaged value size in a leaf's element table (bbolt believes it) must
// not make a read, a listing or Check allocate what it claims: the fuzz
// finding had a 2 GiB secret allocated, and zeroed, before authentication
// could fail. Such a value is not a record.
func TestHugeValueSizeIsNotARecord(t *testing.T) {
	db, path := openTest(t)
	for _, a := range []string{"a", "b", "c"} {
		insert(t, db, a, "secret-"+a)
	}
	db.Close()
	var root uint64
	boltView(t, path, func(btx *bbolt.Tx) { root = uint64(btx.Bucket(classBucket(schema.GenericPassword)).Root()) })
	if root == 0 {
		t.Skip("the class bucket is inline")
	}
	// Element 0's value size is at offset 16+12; its top byte gets 0x7f.
	patchPage(t, path, root, 16+15, []byte{0x7f})

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		// Open walks branch pages and leaf headers only; damage inside a
		// leaf is left to reads and Check.
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	found := 0
	err = db.View(func(tx *Tx) error {
		return tx.Find(Query{Class: schema.GenericPassword}, func(r *Record) (bool, error) {
			found++
			tx.Read(r, PartAttrs|PartSecret)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("reading a store with one damaged value size allocated %d MiB", grew>>20)
	}
	if found != 2 {
		t.Fatalf("found %d intact records, want 2", found)
	}
	// The damaged record still holds its primary key: a uniqueness check
	// finds it as a damaged record (an Add replaces it), not as nothing.
	damaged := 0
	for _, a := range []string{"a", "b", "c"} {
		f, _ := item(a, "")
		db.View(func(tx *Tx) error {
			r, err := tx.ByPrimaryKey(schema.GenericPassword, f)
			if err != nil || r == nil {
				t.Fatalf("ByPrimaryKey(%s): %v, %v", a, r, err)
			}
			if !r.Readable() {
				damaged++
			}
			return nil
		})
	}
	if damaged != 1 {
		t.Fatalf("%d damaged records found by primary key, want 1", damaged)
	}
	if p := fmt.Sprint(rep.Problems); !strings.Contains(p, "outside the page") && !strings.Contains(p, "larger than the file") {
		t.Fatalf("Check did not report the damaged size: %v", rep.Problems)
	}
}

// An empty inline bucket is a bare page header, 16 bytes, like the header
// the cheap walk reads of a leaf; a count in it that does not fit must
// still stop Open: bbolt would read that many elements past the bucket's
// value, which it may have copied to the heap (a fuzzer found reads of
// random memory, answering differently from run to run).
func TestWalkEmptyInlineBucketCount(t *testing.T) {
	db, path := openTest(t)
	db.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// "cert" ‖ bucket header (root 0, sequence 0) ‖ page header (id 0,
	// leaf, count 0, overflow 0).
	want := append([]byte("cert"), make([]byte, 16+8)...)
	want = append(want, 0x02, 0, 0, 0, 0, 0, 0, 0)
	at := bytes.Index(raw, want)
	if at < 0 {
		t.Fatal("no empty inline bucket cert in a fresh store")
	}
	raw[at+4+16+10] = 48 // its element count
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if problems, sound := walkBranches(path, 0); sound {
		t.Fatalf("the cheap walk passed a damaged empty inline bucket: %v", problems)
	}
	if _, err := Open(path, Options{Device: testDevice()}); status.Of(err) != status.Decode {
		t.Fatalf("Open of a store with a damaged empty inline bucket: %v", err)
	}
}

// A freelist page whose overflow count reaches past the file is refused
// at Open: a write commit frees the old freelist page page by page, so
// the first Add on such a store looped over billions of page ids (a fuzz
// finding); a freelist that lists a meta page is refused as well.
func TestWalkFreelist(t *testing.T) {
	for _, tc := range []struct {
		name  string
		off   int
		patch []byte
	}{
		{"overflow", 12, binary.NativeEndian.AppendUint32(nil, 0x7fffffff)},
		{"lists page 1", 16, binary.NativeEndian.AppendUint64(nil, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, path := openTest(t)
			for i := range 20 {
				insert(t, db, fmt.Sprint("a", i), "s")
			}
			db.Close()
			var id uint64
			boltView(t, path, func(btx *bbolt.Tx) {
				f, _ := os.Open(path)
				defer f.Close()
				w := &walker{f: f}
				m, ok := w.meta(uint64(btx.ID()))
				if !ok {
					t.Fatal("no meta page")
				}
				id = m.freelist
			})
			var head [16]byte
			f, _ := os.Open(path)
			f.ReadAt(head[:], int64(id)*int64(os.Getpagesize()))
			f.Close()
			if binary.NativeEndian.Uint16(head[10:]) == 0 && tc.off == 16 {
				t.Skip("an empty freelist")
			}
			patchPage(t, path, id, tc.off, tc.patch)
			if _, err := Open(path, Options{Device: testDevice()}); status.Of(err) != status.Decode {
				t.Fatalf("Open of a store with a damaged freelist: %v", err)
			}
		})
	}
}

// When a small store's inline buckets outgrow a page, bbolt splits the
// root bucket into a branch and leaves; the cheap walk still reads those
// leaves whole and follows their buckets (it read only the root page
// whole, so a split root hid every inline bucket from it).
func TestWalkSplitRoot(t *testing.T) {
	db, path := openTest(t)
	db.Close()
	boltUpdate(t, path, func(btx *bbolt.Tx) error {
		for i := range 8 {
			b, err := btx.CreateBucket([]byte(fmt.Sprint("pad", i)))
			if err != nil {
				return err
			}
			if err := b.Put([]byte("v"), bytes.Repeat([]byte{byte(i)}, 800)); err != nil {
				return err
			}
		}
		return nil
	})
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	w := &walker{f: f}
	m, ok := w.meta(0)
	f.Close()
	if !ok {
		t.Fatal("no meta page")
	}
	if flags := binary.NativeEndian.Uint16(raw[m.root*uint64(os.Getpagesize())+8:]); flags != flagBranch {
		t.Fatalf("the root bucket did not split (page type %#x)", flags)
	}
	if problems, sound := walkBranches(path, 0); !sound {
		t.Fatalf("a sound store with a split root: %v", problems)
	}
	want := append([]byte("cert"), make([]byte, 16+8)...)
	want = append(want, 0x02, 0, 0, 0, 0, 0, 0, 0)
	at := bytes.Index(raw, want)
	if at < 0 {
		t.Fatal("no empty inline bucket cert")
	}
	raw[at+4+16+10] = 48
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Device: testDevice()}); status.Of(err) != status.Decode {
		t.Fatalf("Open of a split root with a damaged inline bucket: %v", err)
	}
}

// recordsRoot returns the root page of the generic passwords' records in
// the closed store at path, a branch of at least children children.
func recordsRoot(t *testing.T, path string, children int) (root uint64, page []byte) {
	t.Helper()
	boltView(t, path, func(btx *bbolt.Tx) { root = uint64(btx.Bucket(classBucket(schema.GenericPassword)).Root()) })
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	page = raw[int(root)*ps : (int(root)+1)*ps]
	ne := binary.NativeEndian
	if ne.Uint16(page[8:]) != flagBranch || int(ne.Uint16(page[10:])) < children {
		t.Fatalf("the records' root page %d is not a branch of %d or more children", root, children)
	}
	return root, page
}

// walkReports requires the full walk of the closed store at path to report
// a problem containing want while still calling the tree sound (safe to
// iterate).
func walkReports(t *testing.T, path, want string) {
	t.Helper()
	problems, sound := walkClosed(t, path)
	if !sound {
		t.Fatalf("the damage made the tree unsound: %v", problems)
	}
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Fatalf("the walk did not report %q: %v", want, problems)
}

// A damaged separator key in a branch page: iteration still sees every
// record (a cursor walks children by position), but a lookup routed by key
// misses a run of them. The full walk (Check) reports the keys outside the
// range their parent routes to them, without calling the tree unsound; a
// clean store has no such problem (TestWalkCleanStore).
func TestWalkKeyOrder(t *testing.T) {
	path := storeWith(t, 300)
	root, page := recordsRoot(t, path, 3)
	ne := binary.NativeEndian
	// Raise the separator of child 1 to the largest row: its keys now lie
	// below it, so lookups of them go to child 0.
	e := 16 + 16
	pos, ksize := int(ne.Uint32(page[e:])), int(ne.Uint32(page[e+4:]))
	first := binary.BigEndian.Uint64(page[e+pos:])
	if ksize != 8 {
		t.Fatalf("a row key of %d bytes", ksize)
	}
	patchPage(t, path, root, e+pos, bytes.Repeat([]byte{0xff}, 8))

	walkReports(t, path, "outside the range its parent routes")
	db := reopen(t, path)
	db.View(func(tx *Tx) error {
		if tx.getRow(schema.GenericPassword, first) != nil {
			t.Fatalf("row %d is still found by key: the damage did not take", first)
		}
		return nil
	})
	rep, err := db.Check()
	if err != nil || len(rep.Problems) == 0 {
		t.Fatalf("Check = %+v, %v; want the damaged separator reported", rep.Problems, err)
	}
}

// A branch's first key changed to a smaller one: every lookup still finds
// its record (keys below the first key go to the first child anyway), but
// bbolt finds a child's entry in its parent by the child's first key, so
// its next write under that child would leave a second entry pointing at
// a freed page. The full walk reports the branch key that differs from
// its child's first key.
func TestWalkFirstSeparator(t *testing.T) {
	path := storeWith(t, 300)
	root, page := recordsRoot(t, path, 2)
	pos := int(binary.NativeEndian.Uint32(page[16:]))
	patchPage(t, path, root, 16+pos, make([]byte, 8))
	walkReports(t, path, "branch key 0 differs from the first key of its child")
}
