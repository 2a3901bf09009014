package store

import (
	"errors"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"

	"github.com/secitemdb/secitemdb/schema"
)

// setLinger sets the group commit's longest wait for the test.
func setLinger(t *testing.T, d time.Duration) {
	t.Helper()
	old := maxLinger
	maxLinger = d
	t.Cleanup(func() { maxLinger = old })
}

// A leader waits for a caller that is sealing (in Prepare) and commits
// its function in the same transaction.
func TestGroupWaitsForSealers(t *testing.T) {
	setLinger(t, time.Minute)
	db, _ := openTest(t)
	db.group.sealing.Add(1) // a caller is sealing
	txids := make(chan uint64, 2)
	done := make(chan error, 2)
	go func() {
		done <- db.Write(func(tx *Tx) error { txids <- tx.txid(); return nil })
	}()
	// The leader must not commit alone meanwhile.
	select {
	case <-txids:
		t.Fatal("the leader committed while a caller was still sealing")
	case <-time.After(50 * time.Millisecond):
	}
	// The sealing caller queues, then stops counting as sealing (Prepare
	// returns before Write; here the order is forced, to test the wait and
	// not the scheduler).
	go func() {
		done <- db.Write(func(tx *Tx) error { txids <- tx.txid(); return nil })
	}()
	for queued := 0; queued < 2; {
		time.Sleep(time.Millisecond)
		db.group.mu.Lock()
		queued = len(db.group.queue)
		db.group.mu.Unlock()
	}
	db.group.sealing.Add(-1)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if a, b := <-txids, <-txids; a != b {
		t.Fatalf("the two callers committed in transactions %d and %d, want one", a, b)
	}
}

// A lone caller (nobody sealing) commits at once, and a sealer that never
// arrives holds a leader back at most maxLinger.
func TestGroupLingerBounds(t *testing.T) {
	setLinger(t, time.Minute)
	db, _ := openTest(t)
	// writeWithin runs a lone Write, failing the test when it has not
	// returned after a generous bound (far past any linger of this test
	// but the minute-long one it must not wait for).
	writeWithin := func(what string) {
		t.Helper()
		finished := make(chan error, 1)
		go func() { finished <- db.Write(func(*Tx) error { return nil }) }()
		select {
		case err := <-finished:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal(what)
		}
	}
	writeWithin("a lone caller waited for a group")
	setLinger(t, 20*time.Millisecond)
	db.group.sealing.Add(1) // sealing forever
	defer db.group.sealing.Add(-1)
	writeWithin("a leader waited past maxLinger for a caller that never came")
}

// Prepare's count of sealers is back to zero after it returns, whether
// it sealed or failed (a leader would otherwise wait for a caller that
// is not coming, on every commit).
func TestPrepareCountsAsSealing(t *testing.T) {
	db, _ := openTest(t)
	f, s := item("a", "s")
	if _, err := db.Prepare(schema.GenericPassword, f, s); err != nil {
		t.Fatal(err)
	}
	f = f.Set(schema.GenericPassword.Attr("pdmn"), schema.String("akpu")) // needs a passcode
	if _, err := db.Prepare(schema.GenericPassword, f, s); err == nil {
		t.Fatal("Prepare sealed an akpu item without a passcode")
	}
	if n := db.group.sealing.Load(); n != 0 {
		t.Fatalf("after Prepare, %d callers count as sealing", n)
	}
}

// groupMember is a function for a group test: it counts its runs and
// writes its name into bucket "test", or fails with its own error.
type groupMember struct {
	name string
	fail error
	runs int
}

func (m *groupMember) fn(tx *Tx) error {
	m.runs++
	if m.fail != nil {
		return m.fail
	}
	b, err := tx.btx.CreateBucketIfNotExists([]byte("test"))
	if err != nil {
		return err
	}
	return b.Put([]byte(m.name), []byte{1})
}

// written reports whether member name's write was committed.
func written(t *testing.T, db *DB, name string) bool {
	t.Helper()
	var ok bool
	if err := db.bolt.View(func(btx *bbolt.Tx) error {
		b := btx.Bucket([]byte("test"))
		ok = b != nil && b.Get([]byte(name)) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ok
}

// runGroup runs the members' Writes as one group: the first leads and,
// while a caller counts as sealing, waits for the others to queue, in
// order.
func runGroup(t *testing.T, db *DB, members ...*groupMember) []error {
	t.Helper()
	setLinger(t, time.Minute)
	db.group.sealing.Add(1)
	errs := make([]chan error, len(members))
	for i, m := range members {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- db.Write(m.fn) }()
		for queued := 0; queued <= i; { // each queues before the next starts
			time.Sleep(time.Millisecond)
			db.group.mu.Lock()
			queued = len(db.group.queue)
			db.group.mu.Unlock()
		}
	}
	db.group.sealing.Add(-1)
	out := make([]error, len(members))
	for i := range members {
		out[i] = <-errs[i]
	}
	return out
}

// A member that fails after others ran in the leader's transaction is
// taken out: the others commit, and it gets its own error, as alone.
func TestGroupMemberFailsLater(t *testing.T) {
	db, _ := openTest(t)
	bad := status.New(status.DuplicateItem, "the second member's own error")
	a, b, c := &groupMember{name: "a"}, &groupMember{name: "b", fail: bad}, &groupMember{name: "c"}
	errs := runGroup(t, db, a, b, c)
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], bad) {
		t.Fatalf("errors %v, want nil, the member's own, nil", errs)
	}
	if !written(t, db, "a") || !written(t, db, "c") {
		t.Fatal("the members that did not fail were not committed")
	}
}

// A member that fails first in the leader's transaction failed exactly as
// alone: its error is final (it is not run again), and the others commit.
func TestGroupMemberFailsFirst(t *testing.T) {
	db, _ := openTest(t)
	bad := status.New(status.DuplicateItem, "the leader's own error")
	a, b := &groupMember{name: "a", fail: bad}, &groupMember{name: "b"}
	errs := runGroup(t, db, a, b)
	if !errors.Is(errs[0], bad) || errs[1] != nil {
		t.Fatalf("errors %v, want the leader's own, nil", errs)
	}
	if a.runs != 1 {
		t.Fatalf("the failing leader's function ran %d times, want once", a.runs)
	}
	if !written(t, db, "b") {
		t.Fatal("the member after the failed leader was not committed")
	}
}
