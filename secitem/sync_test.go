package secitem_test

import (
	"bytes"
	"testing"
	"time"

	. "github.com/secitemdb/secitemdb/secitem"
)

func syncGenp(kv ...any) Dict {
	return genp(append([]any{AttrSynchronizable, true}, kv...)...)
}

func tombs(t *testing.T, db *DB, kv ...any) []Dict {
	t.Helper()
	return matching(t, db, genp(append([]any{AttrSynchronizable, AttrSynchronizableAny, AttrTombstone, 1, ReturnData, true}, kv...)...))
}

// Deleting a synchronizable item leaves a tombstone: its primary key and
// metadata, a later mdat, no secret; invisible to ordinary queries.
func TestDeleteLeavesTombstone(t *testing.T) {
	clock := newClock()
	db := openTest(t, &Options{Now: clock.Now})
	mustAdd(t, db, syncGenp(AttrService, "s", AttrAccount, "a", AttrLabel, "L", ValueData, []byte("secret")))
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "local"))
	wantStatus(t, db.Delete(syncGenp(AttrService, "s", AttrAccount, "a")), 0)
	wantStatus(t, db.Delete(genp(AttrService, "s", AttrAccount, "local")), 0)
	ts := tombs(t, db)
	if len(ts) != 1 {
		t.Fatalf("%d tombstones, want 1 (the local item leaves none)", len(ts))
	}
	tb := ts[0]
	if tb[AttrAccount] != "a" || tb[AttrService] != "s" || tb[AttrLabel] != nil || len(tb[ValueData].([]byte)) != 0 {
		t.Errorf("tombstone keeps %v", FormatDict(tb))
	}
	if n := count(t, db, syncGenp(AttrService, "s")); n != 0 {
		t.Errorf("an ordinary query sees %d items", n)
	}
	// An Add of the same primary key replaces the tombstone.
	mustAdd(t, db, syncGenp(AttrService, "s", AttrAccount, "a", ValueData, []byte("again")))
	if len(tombs(t, db)) != 0 {
		t.Error("the tombstone survived an Add of its primary key")
	}
}

func TestUseTombstonesOverrides(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, syncGenp(AttrService, "s", AttrAccount, "quiet"))
	wantStatus(t, db.Delete(syncGenp(AttrService, "s", AttrAccount, "quiet", UseTombstones, false)), 0)
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "loud"))
	wantStatus(t, db.Delete(genp(AttrService, "s", AttrAccount, "loud", UseTombstones, true)), 0)
	ts := tombs(t, db)
	if len(ts) != 1 || ts[0][AttrAccount] != "loud" {
		t.Fatalf("tombstones %v, want only loud's", ts)
	}
	// Deleting a tombstone removes it, unless u_Tomb asks for a fresh one.
	first := ts[0][AttrModificationDate].(time.Time)
	wantStatus(t, db.Delete(genp(AttrService, "s", AttrAccount, "loud", AttrTombstone, 1, UseTombstones, true)), 0)
	ts = tombs(t, db)
	if len(ts) != 1 || !ts[0][AttrModificationDate].(time.Time).After(first) {
		t.Fatalf("a tombstone deleted with u_Tomb is not replaced by a fresh one: %v", ts)
	}
	wantStatus(t, db.Delete(genp(AttrService, "s", AttrAccount, "loud", AttrTombstone, 1)), 0)
	if len(tombs(t, db)) != 0 {
		t.Fatal("a tombstone deleted without u_Tomb stayed")
	}
}

// An Update that moves a synchronizable item to a new primary key leaves
// a tombstone for the old one; the item keeps its persistent reference.
func TestUpdateMovingPrimaryKeyLeavesTombstone(t *testing.T) {
	db := openTest(t, nil)
	pref := mustAdd(t, db, syncGenp(AttrService, "s", AttrAccount, "old", ReturnPersistentRef, true))
	wantStatus(t, db.Update(syncGenp(AttrService, "s", AttrAccount, "old"), Dict{AttrAccount: "new"}), 0)
	ts := tombs(t, db)
	if len(ts) != 1 || ts[0][AttrAccount] != "old" {
		t.Fatalf("tombstones %v, want one for the old key", ts)
	}
	got, err := db.CopyMatching(Dict{ValuePersistentRef: pref, ReturnAttributes: true})
	if err != nil || got.(Dict)[AttrAccount] != "new" {
		t.Fatalf("the item moved away from its persistent reference: %v %v", got, err)
	}
	// A change that keeps the primary key leaves none.
	wantStatus(t, db.Update(syncGenp(AttrService, "s", AttrAccount, "new"), Dict{AttrLabel: "x"}), 0)
	if len(tombs(t, db)) != 1 {
		t.Fatal("an update within the same primary key left a tombstone")
	}
}

func TestSynchronizableLimits(t *testing.T) {
	db := openTest(t, nil)
	_, err := db.Add(syncGenp(AttrService, "s", AttrAccessible, AccessibleAfterFirstUnlockThisDeviceOnly))
	wantStatus(t, err, ErrParam)
	mustAdd(t, db, syncGenp(AttrService, "s", AttrAccount, "a"))
	wantStatus(t, db.Update(syncGenp(AttrService, "s"), Dict{AttrAccessible: AccessibleWhenUnlockedThisDeviceOnly}), ErrParam)
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "b", AttrAccessible, AccessibleAlwaysThisDeviceOnly))
	wantStatus(t, db.Update(genp(AttrService, "s", AttrAccount, "b"), Dict{AttrSynchronizable: true}), ErrParam)
	// A token key never leaves its token: not at generation, not by Update.
	_, err = db.GenerateKey(Dict{AttrKeyType: KeyTypeECSECPrimeRandom, AttrTokenID: TokenIDSecureEnclave, AttrIsPermanent: true, AttrApplicationTag: "t1", AttrSynchronizable: true})
	wantStatus(t, err, ErrParam)
	if _, err := db.GenerateKey(Dict{AttrKeyType: KeyTypeECSECPrimeRandom, AttrTokenID: TokenIDSecureEnclave, AttrIsPermanent: true, AttrApplicationTag: "t2"}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, db.Update(Dict{Class: ClassKey, AttrApplicationTag: "t2"}, Dict{AttrSynchronizable: true}), ErrParam)
}

// The journal lists changes to synchronizable items only, with their
// current state; items applied from elsewhere are not journaled again.
func TestSyncJournal(t *testing.T) {
	a := openTest(t, nil)
	b := openTest(t, nil)
	mustAdd(t, a, genp(AttrService, "local", ValueData, []byte("never leaves")))
	mustAdd(t, a, syncGenp(AttrService, "s", AttrAccount, "x", ValueData, []byte("v1")))
	wantStatus(t, a.Update(syncGenp(AttrService, "s", AttrAccount, "x"), Dict{ValueData: []byte("v2")}), 0)
	var changes []SyncChange
	if err := a.SyncChanges(func(c SyncChange) bool { changes = append(changes, c); return true }); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[1].Item == nil || changes[1].Item.Tombstone {
		t.Fatalf("journal: %+v", changes)
	}
	enc, _ := changes[1].Item.MarshalBinary()
	if bytes.Contains(enc, []byte("never leaves")) {
		t.Fatal("a local item reached the journal")
	}
	it, err := UnmarshalSyncItem(enc)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.ApplySyncItems([]*SyncItem{it}, map[string][]byte{"rev": []byte("7")})
	if err != nil || n != 1 {
		t.Fatalf("apply: %d %v", n, err)
	}
	got, err := b.CopyMatching(syncGenp(AttrService, "s", AttrAccount, "x", ReturnData, true))
	if err != nil || string(got.([]byte)) != "v2" {
		t.Fatalf("applied item: %q %v", got, err)
	}
	if st, _ := b.SyncStatus(); st.Pending != 0 {
		t.Errorf("an applied item was journaled: %d pending", st.Pending)
	}
	if v, _ := b.SyncState("rev"); string(v) != "7" {
		t.Errorf("state %q", v)
	}
	// Applying the same version again changes nothing.
	if n, _ := b.ApplySyncItems([]*SyncItem{it}, nil); n != 0 {
		t.Error("the same version was applied twice")
	}
	if err := a.AckSyncChanges(changes[1].Seq); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.SyncStatus(); st.Pending != 0 {
		t.Errorf("%d pending after the ack", st.Pending)
	}
	// A deletion travels as a tombstone.
	wantStatus(t, a.Delete(syncGenp(AttrService, "s", AttrAccount, "x")), 0)
	changes = nil
	a.SyncChanges(func(c SyncChange) bool { changes = append(changes, c); return true })
	if len(changes) != 1 || changes[0].Item == nil || !changes[0].Item.Tombstone {
		t.Fatalf("after a delete: %+v", changes)
	}
	if n, err := b.ApplySyncItems([]*SyncItem{changes[0].Item}, nil); n != 1 || err != nil {
		t.Fatalf("applying the tombstone: %d %v", n, err)
	}
	if n := count(t, b, syncGenp(AttrService, "s")); n != 0 {
		t.Error("the tombstone did not delete the item")
	}
}

// Conflicts resolve the same way everywhere: the later mdat, then the
// greater UUID.
func TestSyncConflicts(t *testing.T) {
	ca, cb := newClock(), newClock()
	a := openTest(t, &Options{Now: ca.Now})
	b := openTest(t, &Options{Now: cb.Now})
	mustAdd(t, a, syncGenp(AttrService, "s", ValueData, []byte("from a")))
	cb.Advance(time.Second)
	mustAdd(t, b, syncGenp(AttrService, "s", ValueData, []byte("from b, later")))
	ia, ib := journaled(t, a), journaled(t, b)
	if n, _ := a.ApplySyncItems([]*SyncItem{ib}, nil); n != 1 {
		t.Error("a kept its older version")
	}
	if n, _ := b.ApplySyncItems([]*SyncItem{ia}, nil); n != 0 {
		t.Error("b took the older version")
	}
	for _, db := range []*DB{a, b} {
		got, _ := db.CopyMatching(syncGenp(AttrService, "s", ReturnData, true))
		if string(got.([]byte)) != "from b, later" {
			t.Errorf("a store holds %q", got)
		}
	}
	if !ib.Newer(ia) || ia.Newer(ib) {
		t.Error("Newer is not an order")
	}
	same := *ia
	same.Modified = ib.Modified
	if same.Newer(ib) == ib.Newer(&same) && same.UUID != ib.UUID {
		t.Error("equal dates are not ordered by UUID")
	}
}

func journaled(t *testing.T, db *DB) *SyncItem {
	t.Helper()
	var last *SyncItem
	db.SyncChanges(func(c SyncChange) bool { last = c.Item; return true })
	if last == nil {
		t.Fatal("nothing journaled")
	}
	return last
}

// Applying an item whose class key is locked fails and applies nothing.
func TestApplySyncWhileLocked(t *testing.T) {
	a := openTest(t, nil)
	b := openTest(t, &Options{PasscodeCost: cheapCost})
	wantStatus(t, b.SetPasscode(nil, passA), 0)
	mustAdd(t, a, syncGenp(AttrService, "s", AttrAccessible, AccessibleWhenUnlocked))
	it := journaled(t, a)
	wantStatus(t, b.Lock(), 0)
	_, err := b.ApplySyncItems([]*SyncItem{it}, map[string][]byte{"rev": []byte("1")})
	wantStatus(t, err, ErrInteractionNotAllowed)
	if v, _ := b.SyncState("rev"); v != nil {
		t.Error("state advanced past an item that was not applied")
	}
	_, err = UnmarshalSyncItem([]byte("junk"))
	wantStatus(t, err, ErrDecode)
}

// An Update whose new primary key is held by a tombstone removes the
// tombstone and proceeds (the item in the way is not a live item), and
// moving the item's own key leaves a tombstone for the key it left.
func TestUpdateCollidingWithTombstone(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, syncGenp(AttrService, "s", AttrAccount, "a", ValueData, []byte("first")))
	wantStatus(t, db.Delete(syncGenp(AttrService, "s", AttrAccount, "a")), 0)
	mustAdd(t, db, syncGenp(AttrService, "s", AttrAccount, "b", ValueData, []byte("second")))
	wantStatus(t, db.Update(syncGenp(AttrService, "s", AttrAccount, "b"), Dict{AttrAccount: "a"}), 0)
	r, err := db.CopyMatching(syncGenp(AttrService, "s", AttrAccount, "a", ReturnData, true))
	if err != nil || string(r.([]byte)) != "second" {
		t.Fatalf("after the update, account a reads %v, %v", r, err)
	}
	ts := tombs(t, db)
	if len(ts) != 1 || ts[0][AttrAccount] != "b" {
		var accts []any
		for _, tb := range ts {
			accts = append(accts, tb[AttrAccount])
		}
		t.Fatalf("tombstones for accounts %v, want only b's", accts)
	}
}
