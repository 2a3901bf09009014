package secitem_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/protect"
	. "github.com/secitemdb/secitemdb/secitem"
)

// cheapCost keeps passcode derivations fast in tests. DO NOT use such a
// cost in real code.
var cheapCost = &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}

var (
	passA = []byte("1234-passcode-A")
	passB = []byte("5678-passcode-B")
)

// reopenable opens a store at a fixed path and reopens it on demand.
type reopenable struct {
	t     *testing.T
	path  string
	dev   protect.Device
	clock *fakeClock
	opts  Options
	db    *DB
}

func newReopenable(t *testing.T, mod func(*Options)) *reopenable {
	r := &reopenable{t: t, path: filepath.Join(t.TempDir(), "dp.keychain"), dev: testDevice(), clock: newClock()}
	r.opts = Options{Device: r.dev, Now: r.clock.Now, PasscodeCost: cheapCost}
	if mod != nil {
		mod(&r.opts)
	}
	r.open()
	t.Cleanup(func() {
		if r.db != nil {
			r.db.Close()
		}
	})
	return r
}

func (r *reopenable) open() *DB {
	r.t.Helper()
	db, err := Open(r.path, &r.opts)
	if err != nil {
		r.t.Fatalf("Open: %v", err)
	}
	r.db = db
	return db
}

func (r *reopenable) reopen() *DB {
	r.t.Helper()
	if err := r.db.Close(); err != nil {
		r.t.Fatalf("Close: %v", err)
	}
	return r.open()
}

var protections = []string{AccessibleWhenUnlocked, AccessibleAfterFirstUnlock, AccessibleAlways,
	AccessibleWhenUnlockedThisDeviceOnly, AccessibleAfterFirstUnlockThisDeviceOnly,
	AccessibleAlwaysThisDeviceOnly, AccessibleWhenPasscodeSetThisDeviceOnly}

// available says which protection classes have their key in each state.
func available(state LockState, pdmn string) bool {
	switch state {
	case Unlocked:
		return true
	case Locked:
		return pdmn != AccessibleWhenUnlocked && pdmn != AccessibleWhenUnlockedThisDeviceOnly && pdmn != AccessibleWhenPasscodeSetThisDeviceOnly
	}
	return pdmn == AccessibleAlways || pdmn == AccessibleAlwaysThisDeviceOnly
}

// TestProtectionMatrix: each operation × each protection class × each lock
// state, with the status of decisions.md 3.
func TestProtectionMatrix(t *testing.T) {
	r := newReopenable(t, nil)
	wantStatus(t, r.db.SetPasscode(nil, passA), 0)
	for _, p := range protections {
		for _, role := range []string{"read", "update", "delete-BeforeFirstUnlock", "delete-Locked", "delete-Unlocked"} {
			mustAdd(t, r.db, genp(AttrService, "matrix", AttrAccount, p+"/"+role, AttrAccessible, p, ValueData, []byte("pw")))
		}
	}
	db := r.reopen()
	if db.State() != BeforeFirstUnlock {
		t.Fatalf("a store with a passcode opens %v", db.State())
	}
	check := func(state LockState) {
		t.Helper()
		if db.State() != state {
			t.Fatalf("state %v, want %v", db.State(), state)
		}
		for _, p := range protections {
			t.Run(fmt.Sprintf("%v/%s", state, p), func(t *testing.T) {
				want := func(ok bool) Status {
					if ok {
						return 0
					}
					return ErrInteractionNotAllowed
				}(available(state, p))
				_, err := db.Add(genp(AttrService, "matrix", AttrAccount, p+"/new-"+state.String(), AttrAccessible, p, ValueData, []byte("x")))
				wantStatus(t, err, want)
				_, err = db.Add(genp(AttrService, "matrix", AttrAccount, p+"/read", AttrAccessible, p))
				if want == 0 {
					wantStatus(t, err, ErrDuplicateItem)
				} else {
					wantStatus(t, err, ErrInteractionNotAllowed) // a locked duplicate is -25308 too
				}
				_, err = db.CopyMatching(genp(AttrService, "matrix", AttrAccount, p+"/read", ReturnData, true))
				wantStatus(t, err, want)
				_, err = db.CopyMatching(genp(AttrService, "matrix", AttrAccount, p+"/read"))
				wantStatus(t, err, want) // even without return keys
				_, err = db.CopyMatching(genp(AttrService, "matrix", AttrAccount, p+"/nothing-here", ReturnData, true))
				wantStatus(t, err, ErrItemNotFound)
				wantStatus(t, db.Update(genp(AttrService, "matrix", AttrAccount, p+"/update"), Dict{AttrLabel: state.String()}), want)
				wantStatus(t, db.Delete(genp(AttrService, "matrix", AttrAccount, p+"/delete-"+state.String())), 0)
			})
		}
	}
	check(BeforeFirstUnlock)
	wantStatus(t, db.Unlock(passA), 0)
	check(Unlocked)
	wantStatus(t, db.Lock(), 0)
	check(Locked)
}

// TestStates: the lock state machine of API.md.
func TestStates(t *testing.T) {
	r := newReopenable(t, nil)
	db := r.db
	if db.State() != Unlocked {
		t.Fatalf("a new store without passcode is %v", db.State())
	}
	mustAdd(t, db, genp(AttrService, "ak", ValueData, []byte("x")))
	mustAdd(t, db, genp(AttrService, "ck", AttrAccessible, AccessibleAfterFirstUnlock, ValueData, []byte("x")))
	wantStatus(t, db.Lock(), 0)
	_, err := db.CopyMatching(genp(AttrService, "ak"))
	wantStatus(t, err, ErrInteractionNotAllowed)
	wantStatus(t, db.Unlock([]byte("anything")), ErrAuthFailed) // no passcode is set
	wantStatus(t, db.Unlock(nil), 0)
	if _, err := db.CopyMatching(genp(AttrService, "ak")); err != nil {
		t.Fatal(err)
	}
	db = r.reopen()
	if db.State() != Unlocked {
		t.Fatalf("a store without passcode reopens %v", db.State())
	}
	wantStatus(t, db.SetPasscode(nil, passA), 0)
	if db.State() != Unlocked {
		t.Fatalf("after SetPasscode: %v", db.State())
	}
	db = r.reopen()
	if db.State() != BeforeFirstUnlock {
		t.Fatalf("a store with a passcode reopens %v", db.State())
	}
	_, err = db.CopyMatching(genp(AttrService, "ck"))
	wantStatus(t, err, ErrInteractionNotAllowed) // ck needs a first unlock
	wantStatus(t, db.Unlock(passA), 0)
	wantStatus(t, db.Lock(), 0)
	if _, err := db.CopyMatching(genp(AttrService, "ck")); err != nil {
		t.Fatalf("ck after the first unlock, while locked: %v", err)
	}
	_, err = db.CopyMatching(genp(AttrService, "ak"))
	wantStatus(t, err, ErrInteractionNotAllowed)
	db.Close()
	_, err = db.CopyMatching(genp(AttrService, "ck"))
	wantStatus(t, err, ErrNotAvailable)
	wantStatus(t, db.Lock(), ErrNotAvailable)
	db = r.open() // Close forgot everything
	_, err = db.CopyMatching(genp(AttrService, "ck"))
	wantStatus(t, err, ErrInteractionNotAllowed)
}

// Pitfall 9: a background read fails while locked; "resetting" by
// deleting destroys the user's credential, because Delete needs no key.
func TestPitfall9_DeleteWhileLocked(t *testing.T) {
	r := newReopenable(t, nil)
	db := r.db
	wantStatus(t, db.SetPasscode(nil, passA), 0)
	mustAdd(t, db, genp(AttrService, "api", AttrAccount, "alice", ValueData, []byte("token")))
	wantStatus(t, db.Lock(), 0)

	_, err := db.CopyMatching(genp(AttrService, "api", AttrAccount, "alice", ReturnData, true))
	wantStatus(t, err, ErrInteractionNotAllowed)
	// The naive reset: delete and start over. It succeeds while locked...
	wantStatus(t, db.Delete(genp(AttrService, "api", AttrAccount, "alice")), 0)
	// ... and the credential is gone for good.
	wantStatus(t, db.Unlock(passA), 0)
	_, err = db.CopyMatching(genp(AttrService, "api", AttrAccount, "alice"))
	wantStatus(t, err, ErrItemNotFound)
}

func TestSetPasscode(t *testing.T) {
	r := newReopenable(t, nil)
	db := r.db
	_, err := db.Add(genp(AttrService, "akpu", AttrAccessible, AccessibleWhenPasscodeSetThisDeviceOnly))
	wantStatus(t, err, ErrNotAvailable) // akpu needs a passcode
	wantStatus(t, db.SetPasscode([]byte("wrong"), passA), ErrAuthFailed)
	wantStatus(t, db.SetPasscode(nil, passA), 0)
	for _, p := range protections {
		mustAdd(t, db, genp(AttrService, "s", AttrAccount, p, AttrAccessible, p, ValueData, []byte("pw-"+p)))
	}
	wantStatus(t, db.SetPasscode(passB, passA), ErrAuthFailed)
	wantStatus(t, db.SetPasscode(passA, passB), 0)
	db = r.reopen()
	wantStatus(t, db.Unlock(passA), ErrAuthFailed)
	wantStatus(t, db.Unlock(passB), 0)
	if n := count(t, db, genp(AttrService, "s")); n != len(protections) {
		t.Fatalf("after a passcode change %d items readable, want %d", n, len(protections))
	}
	for _, p := range protections {
		got, err := db.CopyMatching(genp(AttrService, "s", AttrAccount, p, ReturnData, true))
		if err != nil || string(got.([]byte)) != "pw-"+p {
			t.Fatalf("%s after change: %v", p, err)
		}
	}
	// Removing the passcode destroys the akpu items.
	wantStatus(t, db.SetPasscode(passB, nil), 0)
	_, err = db.CopyMatching(genp(AttrService, "s", AttrAccount, AccessibleWhenPasscodeSetThisDeviceOnly))
	wantStatus(t, err, ErrItemNotFound)
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, AccessibleWhenPasscodeSetThisDeviceOnly, AttrAccessible, AccessibleAlways)) // its key is free
	_, err = db.Add(genp(AttrService, "again", AttrAccessible, AccessibleWhenPasscodeSetThisDeviceOnly))
	wantStatus(t, err, ErrNotAvailable)
	db = r.reopen()
	if db.State() != Unlocked {
		t.Fatalf("without passcode the store opens %v", db.State())
	}
	if n := count(t, db, genp(AttrService, "s")); n != len(protections) {
		t.Fatalf("after removing the passcode %d items, want %d", n, len(protections))
	}
}

// TestSetPasscodeCrashSafety fails every step of setting, changing and
// removing the passcode, reopens, and checks that exactly one of the old
// and new passcodes works and every item is readable.
func TestSetPasscodeCrashSafety(t *testing.T) {
	steps := []string{"passcode:attempt-recorded", "setpasscode:prepared", "setpasscode:in-transaction", "setpasscode:stored"}
	changes := []struct {
		name     string
		old, new []byte
	}{{"set", nil, passB}, {"change", passA, passB}, {"remove", passA, nil}}
	for _, ch := range changes {
		for _, step := range steps {
			if ch.old == nil && step == "passcode:attempt-recorded" {
				continue // no passcode, no attempt to record
			}
			t.Run(ch.name+"/"+step, func(t *testing.T) {
				r := newReopenable(t, nil)
				db := r.db
				if ch.old != nil {
					wantStatus(t, db.SetPasscode(nil, ch.old), 0)
				}
				for _, p := range protections {
					if p == AccessibleWhenPasscodeSetThisDeviceOnly && ch.old == nil {
						continue
					}
					mustAdd(t, db, genp(AttrService, "s", AttrAccount, p, AttrAccessible, p, ValueData, []byte("pw")))
				}
				hit := false
				SetFailpoint(func(s string) error {
					if s == step {
						hit = true
						return errors.New("injected crash at " + s)
					}
					return nil
				})
				err := db.SetPasscode(ch.old, ch.new)
				SetFailpoint(nil)
				if err == nil || !hit {
					t.Fatalf("failpoint %s not reached (%v)", step, err)
				}
				db = r.reopen()
				noPasscode := db.State() == Unlocked
				works := func(p []byte) bool {
					if p == nil {
						return noPasscode
					}
					return !noPasscode && db.Unlock(p) == nil
				}
				oldOK := works(ch.old)
				newOK := works(ch.new)
				if oldOK == newOK {
					t.Fatalf("old passcode works: %v, new works: %v; want exactly one", oldOK, newOK)
				}
				if wantNew := step == "setpasscode:stored"; newOK != wantNew {
					t.Fatalf("after a crash at %s the new passcode works: %v", step, newOK)
				}
				if db.State() != Unlocked {
					t.Fatalf("state %v after unlocking", db.State())
				}
				want := len(protections) - 1
				if ch.old != nil && !(ch.new == nil && newOK) {
					want = len(protections) // akpu items survive unless the removal happened
				}
				if n := count(t, db, genp(AttrService, "s")); n != want {
					t.Fatalf("%d items readable, want %d", n, want)
				}
				// Every surviving item's secret opens too (its item key
				// under the re-wrapped class keys), not only its attributes.
				secrets := 0
				for _, p := range protections {
					v, err := db.CopyMatching(genp(AttrService, "s", AttrAccount, p, ReturnData, true))
					if err != nil {
						continue
					}
					if string(v.([]byte)) != "pw" {
						t.Fatalf("item %s reads back other data", p)
					}
					secrets++
				}
				if secrets != want {
					t.Fatalf("%d secrets readable, want %d", secrets, want)
				}
			})
		}
	}
}

func TestThrottling(t *testing.T) {
	r := newReopenable(t, nil)
	db := r.db
	wantStatus(t, db.SetPasscode(nil, passA), 0)
	db = r.reopen()
	wrong := []byte("0000")
	// Attempts 1-4: no delay.
	for i := 1; i <= 4; i++ {
		wantStatus(t, db.Unlock(wrong), ErrAuthFailed)
		if _, wait, _ := db.UnlockDelay(); wait != 0 {
			t.Fatalf("after %d failures: wait %v", i, wait)
		}
	}
	delays := []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 15 * time.Minute, time.Hour, time.Hour}
	for i, d := range delays {
		failures := 5 + i
		kdf := protect.KDFRuns()
		wantStatus(t, db.Unlock(wrong), ErrAuthFailed) // failure number `failures`
		if protect.KDFRuns() != kdf+1 {
			t.Fatalf("an attempt must run the derivation exactly once")
		}
		n, wait, _ := db.UnlockDelay()
		if n != failures || wait != d {
			t.Fatalf("after %d failures: %d recorded, wait %v; want %v", failures, n, wait, d)
		}
		// A throttled attempt neither runs the derivation nor counts,
		// even with the right passcode.
		kdf = protect.KDFRuns()
		r.clock.Advance(d - time.Second)
		err := db.Unlock(passA)
		wantStatus(t, err, ErrAuthFailed)
		if !strings.Contains(err.Error(), "try again in 1s") || protect.KDFRuns() != kdf {
			t.Fatalf("throttled attempt: %v (derivations %d)", err, protect.KDFRuns()-kdf)
		}
		if n2, _, _ := db.UnlockDelay(); n2 != failures {
			t.Fatalf("a throttled attempt counted: %d", n2)
		}
		r.clock.Advance(time.Second)
		if failures == 7 {
			// A restart during the delay starts the period again.
			wantStatus(t, db.Unlock(wrong), ErrAuthFailed) // failure 8
			db = r.reopen()
			r.clock.Advance(14 * time.Minute)
			wantStatus(t, db.Unlock(passA), ErrAuthFailed)
			r.clock.Advance(time.Minute)
			if n, wait, _ := db.UnlockDelay(); n != 8 || wait != 0 {
				t.Fatalf("after restart: %d failures, wait %v", n, wait)
			}
			break
		}
	}
	// Survives a restart (which starts the period again), and only a
	// right passcode resets it.
	db = r.reopen()
	if n, wait, _ := db.UnlockDelay(); n != 8 || wait != 15*time.Minute {
		t.Fatalf("after restart: %d failures, wait %v", n, wait)
	}
	r.clock.Advance(15 * time.Minute)
	// Failures 9 and 10 wait an hour each (no wipe: it is off by default).
	for failures := 9; failures <= 10; failures++ {
		wantStatus(t, db.Unlock(wrong), ErrAuthFailed)
		if n, wait, _ := db.UnlockDelay(); n != failures || wait != time.Hour {
			t.Fatalf("after %d failures: %d recorded, wait %v; want 1h", failures, n, wait)
		}
		r.clock.Advance(59 * time.Minute)
		wantStatus(t, db.Unlock(passA), ErrAuthFailed) // still throttled
		r.clock.Advance(time.Minute)
	}
	wantStatus(t, db.Unlock(passA), 0)
	if n, wait, _ := db.UnlockDelay(); n != 0 || wait != 0 {
		t.Fatalf("after success: %d failures, wait %v", n, wait)
	}
}

// The attempt is on disk before the passcode is evaluated: a crash during
// the check (here: before it) still counts.
func TestAttemptRecordedBeforeCheck(t *testing.T) {
	r := newReopenable(t, nil)
	wantStatus(t, r.db.SetPasscode(nil, passA), 0)
	db := r.reopen()
	kdf := protect.KDFRuns()
	SetFailpoint(func(s string) error {
		if s == "passcode:attempt-recorded" {
			return errors.New("crash")
		}
		return nil
	})
	err := db.Unlock(passA)
	SetFailpoint(nil)
	if err == nil || protect.KDFRuns() != kdf {
		t.Fatalf("the failpoint did not stop the check: %v", err)
	}
	db = r.reopen()
	if n, _, _ := db.UnlockDelay(); n != 1 {
		t.Fatalf("%d attempts on disk, want 1", n)
	}
}

func TestWipeAfterTenFailures(t *testing.T) {
	for _, wipe := range []bool{false, true} {
		t.Run(fmt.Sprint("wipe=", wipe), func(t *testing.T) {
			r := newReopenable(t, func(o *Options) { o.WipeAfterFailedAttempts = wipe })
			db := r.db
			wantStatus(t, db.SetPasscode(nil, passA), 0)
			mustAdd(t, db, genp(AttrService, "dk", AttrAccessible, AccessibleAlways))
			db = r.reopen()
			for i := 1; i <= 10; i++ {
				_, wait, _ := db.UnlockDelay()
				r.clock.Advance(wait)
				wantStatus(t, db.Unlock([]byte("wrong")), ErrAuthFailed)
			}
			n := count(t, db, genp())
			if wipe {
				if n != 0 || db.State() != Unlocked {
					t.Fatalf("after the wipe: %d items, %v", n, db.State())
				}
				db = r.reopen()
				if db.State() != Unlocked || count(t, db, genp()) != 0 {
					t.Fatal("the wipe did not persist")
				}
				mustAdd(t, db, genp(AttrService, "fresh"))
			} else if n != 1 {
				t.Fatalf("without wipe: %d items", n)
			}
		})
	}
}

// A tampered item is skipped by CopyMatching, as on the device, and never
// returns a plaintext; Delete still removes it and Add may replace it.
func TestTamperedItemsAreSkipped(t *testing.T) {
	db := openTest(t, nil)
	good := mustAdd(t, db, genp(AttrService, "s", AttrAccount, "good", ValueData, []byte("good"), ReturnPersistentRef, true)).([]byte)
	bad := mustAdd(t, db, genp(AttrService, "s", AttrAccount, "bad", ValueData, []byte("bad"), ReturnPersistentRef, true)).([]byte)
	raw, err := db.RawRecordForTest(bad)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 0x80 // inside the sealed secret's tag
	if err := db.PutRawRecordForTest(bad, raw); err != nil {
		t.Fatal(err)
	}
	got, err := db.CopyMatching(genp(AttrService, "s", MatchLimit, MatchLimitAll, ReturnData, true))
	wantStatus(t, err, 0)
	if all := got.([]any); len(all) != 1 || string(all[0].([]byte)) != "good" {
		t.Fatalf("CopyMatching returned %d items", len(all))
	}
	_, err = db.CopyMatching(Dict{ValuePersistentRef: bad, ReturnData: true})
	wantStatus(t, err, ErrItemNotFound)
	if _, err := db.CopyMatching(Dict{ValuePersistentRef: good}); err != nil {
		t.Fatal(err)
	}
	// Adding an item with the damaged item's primary key replaces it.
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "bad", ValueData, []byte("again")))
	got, err = db.CopyMatching(genp(AttrService, "s", AttrAccount, "bad", ReturnData, true))
	wantStatus(t, err, 0)
	if string(got.([]byte)) != "again" {
		t.Fatal("the replacement does not read back")
	}
	wantStatus(t, db.Delete(genp(AttrService, "s", AttrAccount, "bad")), 0)
}
