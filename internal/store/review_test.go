package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// An attacker who puts back an old record and edits its version slot
// (leaving the chunk MAC as it was) gets a row that reads as damaged. The
// next legitimate write to the same chunk must not re-sign the edited slot:
// after reopening, the old record still does not read.
func TestVersionChunkNotLaunderedByLaterWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	a := insert(t, db, "alice", "old-password")
	oldRaw := rawGet(t, db, a.Row)
	f, s := item("alice", "new-password")
	if err := db.Update(func(tx *Tx) error { _, _, err := tx.Rewrite(a, f, s); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	k, slot := chunkOf(a.Row)
	if err := bdb.Update(func(btx *bbolt.Tx) error {
		if err := btx.Bucket(classBucket(schema.GenericPassword)).Put(rowKey(a.Row), oldRaw); err != nil {
			return err
		}
		c := getChunk(btx, k)
		binary.BigEndian.PutUint64(c[slot*8:], 1)
		return putChunk(btx, k, c)
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()

	db, err = Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	if _, st := read(db, a.Row); st != status.Decode {
		t.Fatalf("rolled-back row: status %v, want Decode", st)
	}
	b := insert(t, db, "bob", "pw") // same 64-row chunk
	if sec, st := read(db, b.Row); st != status.OK || sec != "pw" {
		t.Fatalf("row written into a rebuilt chunk: status %v", st)
	}
	db.Close()

	db, err = Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if sec, st := read(db, a.Row); st != status.Decode || sec != "" {
		t.Errorf("rolled-back row after a later write to its chunk: status %v (want Decode)", st)
	}
	if sec, st := read(db, b.Row); st != status.OK || sec != "pw" {
		t.Errorf("bob after reopen: status %v", st)
	}
}

// The index bucket is not authenticated. A posting copied under another
// item's row must not make a pinned query (or a uniqueness check) match
// that item: the record's own header has to list the posting.
func TestForgedPostingIgnored(t *testing.T) {
	db, _ := openTest(t)
	insert(t, db, "bank", "real")
	b := insert(t, db, "other", "evil")
	fa, _ := item("bank", "")
	lk := db.lookupTag(schema.GenericPassword, fa)
	key := append(bytes.Clone(lk[:]), binary.BigEndian.AppendUint64(nil, b.Row)...)
	if err := db.bolt.Update(func(btx *bbolt.Tx) error { return btx.Bucket(bucketIndex).Put(key, nil) }); err != nil {
		t.Fatal(err)
	}
	c := schema.GenericPassword
	q := Query{Class: c, Filters: schema.Fields{}.Set(c.Attr("acct"), schema.String("bank")).Set(c.Attr("svce"), schema.String("svc"))}
	var got []string
	err := db.View(func(tx *Tx) error {
		return tx.Find(q, func(r *Record) (bool, error) {
			attrs, _, err := tx.Open(r, false)
			if err != nil {
				return false, err
			}
			acct, _ := attrs.Get("acct")
			got = append(got, acct.Str)
			return true, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "bank" {
		t.Errorf("pinned query for acct=bank matched %q", got)
	}
	// Uniqueness: bob's row is now posted under bank's lookup key, but a
	// new "bank2"-free check for acct=bank must find the real bank only.
	err = db.View(func(tx *Tx) error {
		r, err := tx.ByPrimaryKey(c, fa)
		if err != nil {
			return err
		}
		if r == nil || r.Row == b.Row {
			t.Errorf("ByPrimaryKey(acct=bank) = %v, want the real item", r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Lookup keys are length-prefixed without a size limit. With a 3-byte
// length, an acct of 2^24+4 bytes (5 once the type marker is counted,
// after wrapping) would encode exactly like acct "abcd" followed by a
// crafted svce; the two keys must get different tags.
func TestLookupTagNoAliasing(t *testing.T) {
	db, _ := openTest(t)
	c := schema.GenericPassword
	filler := strings.Repeat("x", 1<<24-4)
	a := schema.Fields{}.
		Set(c.Attr("acct"), schema.String("abcd\x00\x00\x02b"+filler)).
		Set(c.Attr("svce"), schema.String("s"))
	b := schema.Fields{}.
		Set(c.Attr("acct"), schema.String("abcd")).
		Set(c.Attr("svce"), schema.String(filler+"\x00\x00\x02bs"))
	if db.lookupTag(c, a) == db.lookupTag(c, b) {
		t.Fatal("different lookup keys share a tag")
	}
}

// With a passcode set, deleting the attempt record does not reset the
// throttle: a missing record reads as the worst case.
func TestDeletedAttemptRecordIsWorstCase(t *testing.T) {
	db, _ := openTest(t)
	now := time.Unix(1_800_000_000, 0)
	ch, err := db.Keybag().PrepareSetPasscode(testDevice(), nil, []byte("1234"), protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CommitKeybag(ch.Blob, ch.Dropped, nil); err != nil {
		t.Fatal(err)
	}
	db.Keybag().Commit(ch)
	if err := db.SetAttempts(protect.Attempts{Failures: 3, Last: now}); err != nil {
		t.Fatal(err)
	}
	if a, _ := db.Attempts(now); a.Failures != 3 {
		t.Fatalf("attempts = %d, want 3", a.Failures)
	}
	if err := db.bolt.Update(func(btx *bbolt.Tx) error { return btx.Bucket(bucketMeta).Delete(keyAttempts) }); err != nil {
		t.Fatal(err)
	}
	if a, _ := db.Attempts(now); a.Failures != protect.WipeAfter-1 || a.Wait(now) == 0 {
		t.Errorf("after deleting the record: %d failures, wait %v; want the worst case", a.Failures, a.Wait(now))
	}
}

// The generation grows with every commit, wipes included, and cannot be
// edited without the device secret.
func TestGenerationAuthenticated(t *testing.T) {
	db, path := openTest(t)
	g0, err := db.Generation()
	if err != nil {
		t.Fatal(err)
	}
	insert(t, db, "a", "1")
	insert(t, db, "b", "2")
	g1, _ := db.Generation()
	if g1 != g0+2 {
		t.Fatalf("generation %d after two commits from %d", g1, g0)
	}
	if err := db.Wipe(); err != nil {
		t.Fatal(err)
	}
	if g2, _ := db.Generation(); g2 != g1+1 {
		t.Fatalf("generation %d after a wipe from %d", g2, g1)
	}
	db.Close()
	bdb, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bdb.Update(func(btx *bbolt.Tx) error {
		raw := bytes.Clone(btx.Bucket(bucketTip).Get(keyGeneration))
		raw[7] ^= 1
		return btx.Bucket(bucketTip).Put(keyGeneration, raw)
	}); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	if _, err := Open(path, Options{Device: testDevice()}); status.Of(err) != status.Decode {
		t.Fatalf("Open with an edited generation: %v, want Decode", err)
	}
}

// A badly damaged file gives a bounded report: at most maxProblems
// problems and a count of the rest.
func TestCheckReportBounded(t *testing.T) {
	db, _ := openTest(t)
	if err := db.bolt.Update(func(btx *bbolt.Tx) error {
		idx := btx.Bucket(bucketIndex)
		for i := 0; i < maxProblems+500; i++ {
			k := make([]byte, tagSize+8)
			binary.BigEndian.PutUint32(k, uint32(i))
			binary.BigEndian.PutUint64(k[tagSize:], uint64(1_000_000+i))
			if err := idx.Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rep, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != maxProblems+1 || rep.Problems[maxProblems].Detail != "and 500 more problems" {
		t.Fatalf("%d problems, last %q", len(rep.Problems), rep.Problems[len(rep.Problems)-1].Detail)
	}
}

// The version cache is exact per commit: a read after a rewrite sees the
// new version (not the cached old one), and a read transaction begun
// before the rewrite still reads its own snapshot, whose version is the
// old one.
func TestVersionCacheFollowsCommits(t *testing.T) {
	db, _ := openTest(t)
	// Enough items that the mapping has room for the rounds below (a
	// commit that must grow it waits for the open reader).
	err := db.Update(func(tx *Tx) error {
		for i := 0; i < 3000; i++ {
			f, s := item(fmt.Sprint("filler-", i), "x")
			if _, _, err := tx.Insert(schema.GenericPassword, f, s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r := insert(t, db, "acct", "v0")
	readSecret := func(tx *Tx, row uint64) string {
		t.Helper()
		var got string
		tx.Find(Query{Class: schema.GenericPassword}, func(rec *Record) (bool, error) {
			if rec.Row != row {
				return true, nil
			}
			_, sec, err := tx.Read(rec, PartSecret)
			if err != nil {
				t.Fatalf("read of row %d: %v", row, err)
			}
			v, _ := sec.Get("v_Data")
			got = string(v.Bytes())
			return false, nil
		})
		return got
	}
	for i := 1; i <= 5; i++ {
		db.View(func(tx *Tx) error { readSecret(tx, r.Row); return nil }) // fills the cache
		old, err := db.bolt.Begin(false)
		if err != nil {
			t.Fatal(err)
		}
		oldTx, oldRow := &Tx{db: db, btx: old}, r.Row
		done := make(chan error, 1)
		go func() {
			done <- db.Update(func(tx *Tx) error {
				var cur *Record
				tx.Find(Query{Class: schema.GenericPassword}, func(rec *Record) (bool, error) {
					if rec.Row == oldRow {
						cur = rec
					}
					return cur == nil, nil
				})
				f, s := item("acct", fmt.Sprintf("v%d", i))
				var err error
				r, _, err = tx.Rewrite(cur, f, s)
				return err
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			// bbolt's commit waits for open readers when it must grow
			// the mapping; that is not what this test is about.
			old.Rollback()
			<-done
			t.Skip("the commit had to remap the file")
		}
		db.View(func(tx *Tx) error {
			if got, want := readSecret(tx, r.Row), fmt.Sprintf("v%d", i); got != want {
				t.Fatalf("after rewrite %d the read returned %q, want %q", i, got, want)
			}
			return nil
		})
		got := readSecret(oldTx, oldRow)
		old.Rollback()
		if want := fmt.Sprintf("v%d", i-1); got != want {
			t.Fatalf("a transaction begun before rewrite %d read %q, want %q", i, got, want)
		}
	}
}
