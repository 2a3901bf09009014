package secitem_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/identity"
	. "github.com/secitemdb/secitemdb/secitem"
)

// Regression tests for defects found in review. Each one failed before
// its fix.

type namedString string
type namedBytes []byte

// Malformed references and identity queries spelled with named types get
// a status, never a panic (a recovered panic would be misreported as a
// damaged file, and inside a group commit would fail its neighbours).
func TestMalformedRefsAreErrors(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrAccount, "a", AttrService, "s"))
	cases := []struct {
		name string
		op   func() error
		want Status
	}{
		{"add nil RSA key", func() error { _, err := db.Add(Dict{ValueRef: (*rsa.PrivateKey)(nil)}); return err }, ErrParam},
		{"add nil EC public key", func() error { _, err := db.Add(Dict{ValueRef: (*ecdsa.PublicKey)(nil)}); return err }, ErrParam},
		{"add zero EC key", func() error { _, err := db.Add(Dict{ValueRef: &ecdsa.PrivateKey{}}); return err }, ErrParam},
		{"query nil RSA key", func() error { _, err := db.CopyMatching(Dict{ValueRef: (*rsa.PrivateKey)(nil)}); return err }, ErrParam},
		{"query nil token key", func() error { _, err := db.CopyMatching(Dict{ValueRef: (*TokenKey)(nil)}); return err }, ErrInvalidItemRef},
		{"delete zero token key", func() error { return db.Delete(Dict{ValueRef: &TokenKey{}}) }, ErrInvalidItemRef},
		{"add empty certificate", func() error { _, err := db.Add(Dict{ValueRef: &x509.Certificate{}}); return err }, ErrParam},
		{"identity with a nil key", func() error {
			_, err := db.Add(Dict{ValueRef: &identity.Identity{Certificate: certOf(t, "leaf-p384"), PrivateKey: (*ecdsa.PrivateKey)(nil)}})
			return err
		}, ErrInvalidItemRef},
		{"delete class as a named string", func() error { return db.Delete(Dict{Class: namedString(ClassIdentity)}) }, ErrItemNotFound},
		{"update class as a named string", func() error {
			return db.Update(Dict{Class: namedString(ClassIdentity)}, Dict{AttrLabel: "x"})
		}, ErrItemNotFound},
		{"delete by identity reference as named bytes", func() error {
			return db.Delete(Dict{ValuePersistentRef: namedBytes(append([]byte(ClassIdentity), make([]byte, 16)...))})
		}, ErrItemNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("panicked: %v", r)
				}
			}()
			wantStatus(t, tc.op(), tc.want)
		})
	}
}

// A value over the 64 MiB limit is refused up front, not stored in a form
// that can never be read back.
func TestOversizedValueRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 130 MiB")
	}
	db := openTest(t, nil)
	big := make([]byte, 64<<20+1)
	_, err := db.Add(genp(AttrAccount, "big", ValueData, big))
	wantStatus(t, err, ErrParam)
	mustAdd(t, db, genp(AttrAccount, "small", ValueData, []byte("x")))
	wantStatus(t, db.Update(genp(AttrAccount, "small"), Dict{ValueData: big}), ErrParam)
	got, err := db.CopyMatching(genp(AttrAccount, "small", ReturnData, true))
	if err != nil || !bytes.Equal(got.([]byte), []byte("x")) {
		t.Fatalf("the item changed after a refused update: %v", err)
	}
}

// An identity can be deleted while the class key of its certificate and
// key is locked away, by reference and by persistent reference: deleting
// needs no key (decisions.md 3).
func TestDeleteIdentityWhileLocked(t *testing.T) {
	for _, by := range []string{"ref", "persistent ref"} {
		t.Run(by, func(t *testing.T) {
			db := openTest(t, nil)
			wantStatus(t, db.SetPasscode(nil, passA), 0)
			id := idOf(t, "leaf-p384", "leaf-p384")
			pref := mustAdd(t, db, Dict{ValueRef: id, AttrAccessible: AccessibleWhenUnlocked, ReturnPersistentRef: true})
			wantStatus(t, db.Lock(), 0)
			q := Dict{ValueRef: id}
			if by != "ref" {
				q = Dict{ValuePersistentRef: pref}
			}
			wantStatus(t, db.Delete(q), 0)
			wantStatus(t, db.Unlock(passA), 0)
			for _, class := range []string{ClassCertificate, ClassKey} {
				if n := count(t, db, Dict{Class: class}); n != 0 {
					t.Errorf("%d %s items left", n, class)
				}
			}
		})
	}
}

// The token group is readable only, even for a caller entitled to "*".
func TestTokenGroupNotWritableByWildcard(t *testing.T) {
	db := openTest(t, nil)
	c := db.Client(Entitlements{KeychainAccessGroups: []string{"app", "*"}})
	_, err := c.Add(Dict{Class: ClassGenericPassword, AttrAccessGroup: "com.apple.token", AttrAccount: "x"})
	wantStatus(t, err, ErrMissingEntitlement)
	mustAdd(t, c, Dict{Class: ClassGenericPassword, AttrAccount: "y"})
	err = c.Update(Dict{Class: ClassGenericPassword, AttrAccount: "y"}, Dict{AttrAccessGroup: "com.apple.token"})
	wantStatus(t, err, ErrMissingEntitlement)
}

// Calls that do not enter the store through an operation still notice a
// closed store.
func TestStatsAfterClose(t *testing.T) {
	db := openTest(t, nil)
	db.Close()
	_, err := db.Stats()
	wantStatus(t, err, ErrNotAvailable)
	_, _, err = db.UnlockDelay()
	wantStatus(t, err, ErrNotAvailable)
}

// Replacing an item whose record no longer parses also removes its
// postings: Check finds the store consistent afterwards.
func TestReplacingDamagedItemLeavesNoPostings(t *testing.T) {
	db := openTest(t, nil)
	pref := mustAdd(t, db, genp(AttrAccount, "a", AttrService, "s", AttrLabel, "L1", ValueData, []byte("x"), ReturnPersistentRef, true)).([]byte)
	raw, err := db.RawRecordForTest(pref)
	if err != nil {
		t.Fatal(err)
	}
	raw[0] = 9 // the header no longer parses
	if err := db.PutRawRecordForTest(pref, raw); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, db, genp(AttrAccount, "a", AttrService, "s", AttrLabel, "L2", ValueData, []byte("y")))
	rep, err := db.Check()
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("store inconsistent after replacing a damaged item: %v", rep.Problems)
	}
}

// Callbacks run with no lock or transaction held: each may call back into
// the DB, even Lock, without deadlocking.
func TestCallbacksMayReenter(t *testing.T) {
	db, _ := backupSource(t)
	deadline := func(name string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s deadlocked", name)
		}
	}
	var backup bytes.Buffer
	deadline("Backup progress calling Add", func() {
		var added atomic.Int32
		_, err := db.Backup(&backup, []byte("pw"), func(done, total int) {
			if added.Add(1) == 1 {
				mustAdd(t, db, genp(AttrAccount, "from-backup-progress"))
			}
		})
		if err != nil {
			t.Error(err)
		}
	})
	deadline("Items calling Lock, then Unlock", func() {
		n := 0
		err := db.Items(ClassGenericPassword, false, func(Dict, error) bool {
			n++
			if n == 1 {
				wantStatus(t, db.Lock(), 0)
				wantStatus(t, db.Unlock(passA), 0)
			}
			return true
		})
		if err != nil || n == 0 {
			t.Errorf("Items: %v, %d items", err, n)
		}
	})
	dst := openTest(t, nil)
	deadline("Restore progress calling Add", func() {
		last := 0
		var added atomic.Int32
		res, err := dst.Restore(bytes.NewReader(backup.Bytes()), []byte("pw"), func(done int) {
			if done < last {
				t.Errorf("progress went back from %d to %d", last, done)
			}
			last = done
			if added.Add(1) == 1 {
				mustAdd(t, dst, genp(AttrAccount, "from-restore-progress"))
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if last != res.Restored+res.Skipped {
			t.Errorf("last progress %d, restore processed %d", last, res.Restored+res.Skipped)
		}
	})
	if n := count(t, dst, genp(AttrAccount, "from-restore-progress")); n != 1 {
		t.Errorf("the item added from the progress function: %d", n)
	}
}

// A panic in a progress function reaches the caller, and a restore it
// interrupts is rolled back.
func TestProgressPanicRollsBackRestore(t *testing.T) {
	src, _ := backupSource(t)
	var backup bytes.Buffer
	if _, err := src.Backup(&backup, []byte("pw"), nil); err != nil {
		t.Fatal(err)
	}
	dst := openTest(t, nil)
	func() {
		defer func() {
			if r := recover(); r != "stop" {
				t.Fatalf("recovered %v, want the progress function's panic", r)
			}
		}()
		dst.Restore(bytes.NewReader(backup.Bytes()), []byte("pw"), func(int) { panic("stop") })
		t.Fatal("Restore swallowed the panic")
	}()
	if n := count(t, dst, Dict{Class: ClassGenericPassword}); n != 0 {
		t.Errorf("%d items restored by an interrupted restore", n)
	}
}

// State and UnlockDelay may run while failed attempts wipe the store (the
// race detector flagged the keybag swap before they entered the gate).
func TestStateDuringWipe(t *testing.T) {
	r := newReopenable(t, func(o *Options) { o.WipeAfterFailedAttempts = true })
	db := r.db
	wantStatus(t, db.SetPasscode(nil, passA), 0)
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			db.State()
			db.UnlockDelay()
		}
	}()
	for i := 0; i < 10; i++ {
		_, wait, err := db.UnlockDelay()
		if err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(wait)
		db.Unlock([]byte("wrong"))
	}
	stop.Store(true)
	<-done
	if f, _, _ := db.UnlockDelay(); f != 0 || db.State() != Unlocked {
		t.Errorf("after the wipe: %d failures, state %v", f, db.State())
	}
}

// Failpoints that return an error instead of crashing (FI-2's error
// returns): an error before the commit leaves the store exactly as it was
// and usable; an error after it is reported although the change is
// durable (the caller learns the outcome is unknown, never a false
// success); a backup that fails part-way yields an error, and a restore
// that fails part-way adds nothing.
func TestFailpointErrorReturns(t *testing.T) {
	injected := errors.New("injected")
	at := func(step string) {
		SetFailpoint(func(s string) error {
			if s == step {
				return injected
			}
			return nil
		})
	}
	defer SetFailpoint(nil)
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "keep", ValueData, []byte("v1")))
	secret := func(acct string) string {
		r, err := db.CopyMatching(genp(AttrService, "s", AttrAccount, acct, ReturnData, true))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(r.([]byte))
	}
	ops := []struct {
		name  string
		run   func() error
		after string // the secret of "keep" / presence of "new" once applied
	}{
		{"add", func() error {
			_, err := db.Add(genp(AttrService, "s", AttrAccount, "new", ValueData, []byte("n")))
			return err
		}, "n"},
		{"update", func() error {
			return db.Update(genp(AttrService, "s", AttrAccount, "keep"), Dict{ValueData: []byte("v2")})
		}, "v2"},
		{"delete", func() error { return db.Delete(genp(AttrService, "s", AttrAccount, "new")) }, ""},
	}
	for _, op := range ops {
		state := func() string { return secret("keep") + "|" + secret("new") }
		before := state()
		at("store:before-commit")
		if err := op.run(); !errors.Is(err, injected) && StatusOf(err) == 0 {
			t.Fatalf("%s with an error before the commit: %v", op.name, err)
		}
		SetFailpoint(nil)
		if got := state(); got != before {
			t.Fatalf("%s failed before its commit but changed the store: %s -> %s", op.name, before, got)
		}
		at("store:after-commit")
		if err := op.run(); err == nil {
			t.Fatalf("%s with an error after the commit reported success", op.name)
		}
		SetFailpoint(nil)
		if got := state(); got == before {
			t.Fatalf("%s committed but its change is missing (%s)", op.name, got)
		}
	}
	// The handle still writes.
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "after"))

	var buf bytes.Buffer
	at("backup:item-written")
	if _, err := db.Backup(&buf, []byte("pw"), nil); err == nil {
		t.Fatal("a backup failing part-way reported success")
	}
	SetFailpoint(nil)
	buf.Reset()
	if _, err := db.Backup(&buf, []byte("pw"), nil); err != nil {
		t.Fatal(err)
	}
	dst := openTest(t, nil)
	at("restore:item-added")
	if _, err := dst.Restore(bytes.NewReader(buf.Bytes()), []byte("pw"), nil); err == nil {
		t.Fatal("a restore failing part-way reported success")
	}
	SetFailpoint(nil)
	if n := count(t, dst, genp(MatchLimit, MatchLimitAll)); n != 0 {
		t.Fatalf("a failed restore left %d items", n)
	}
}
