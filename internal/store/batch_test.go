package store

import (
	"testing"
	"time"

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
