package secitem

import (
	"errors"
	"fmt"
	"time"

	fp "github.com/secitemdb/secitemdb/internal/failpoint"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
)

// LockState is the state of a store's keybag, as on a device.
type LockState int

// The lock states.
const (
	// BeforeFirstUnlock: no class key is available except Always (dk,
	// dku). A store with a passcode starts here.
	BeforeFirstUnlock LockState = iota
	// Unlocked: every class key is available. A store without a passcode
	// starts here.
	Unlocked
	// Locked: ak, aku and akpu are unavailable; ck and cku stay available
	// after a first unlock.
	Locked
)

// String returns the state's name.
func (s LockState) String() string { return protect.LockState(s).String() }

// State returns the store's lock state.
func (db *DB) State() LockState {
	db.gate.RLock() // a wipe replaces the keybag under the exclusive gate
	defer db.gate.RUnlock()
	return db.state()
}

// state is State for a caller already inside the gate.
func (db *DB) state() LockState { return LockState(db.st.Keybag().State()) }

// Lock drops the WhenUnlocked class keys (ak, aku, akpu) from memory and
// wipes them. It waits for calls already running; once it returns, no call
// returns a secret those keys protect until Unlock.
func (db *DB) Lock() error {
	tr := db.startTrace("Lock")
	db.gate.Lock()
	defer db.gate.Unlock()
	if db.closed {
		err := newErr("Lock", ErrNotAvailable, "the store is closed")
		tr.end(nil, err)
		return err
	}
	db.st.Keybag().Lock()
	tr.end(nil, nil, "state "+db.state().String())
	return nil
}

// Unlock makes every class key available. With a passcode set, passcode
// must be it: each attempt is recorded on disk (and synced) before the
// passcode is checked, and repeated failures are throttled as on a device
// (see UnlockDelay); a wrong passcode is ErrAuthFailed. Without a passcode
// set, passcode must be empty. The passcode is checked only by its full
// key derivation (argon2id entangled with the device secret).
func (db *DB) Unlock(passcode []byte) (err error) {
	tr := db.startTrace("Unlock")
	defer func() { tr.end(nil, err, "state "+db.State().String()) }()
	return wrapErr("Unlock", db.checkPasscode(passcode, func() error {
		return db.st.Keybag().Unlock(db.st.Device(), passcode)
	}))
}

// SetPasscode sets (old empty), changes, or removes (new empty) the
// passcode. old is checked like an Unlock attempt. Only the class keys are
// re-wrapped; items are untouched, except that removing the passcode
// destroys the akpu key and deletes every akpu item. The change is one
// transaction: after a crash at any point exactly one of the two
// passcodes works. The store is Unlocked afterwards.
func (db *DB) SetPasscode(old, new []byte) (err error) {
	tr := db.startTrace("SetPasscode")
	defer func() { tr.end(nil, err) }()
	cost := db.passcodeCost()
	return wrapErr("SetPasscode", db.checkPasscode(old, func() error {
		ch, err := db.st.Keybag().PrepareSetPasscode(db.st.Device(), old, new, cost)
		if err != nil {
			return err
		}
		committed := false
		defer func() {
			if !committed {
				ch.Discard() // wipe the class keys it opened
			}
		}()
		if err := failpoint("setpasscode:prepared"); err != nil {
			return err
		}
		db.gate.Lock()
		defer db.gate.Unlock()
		if err := db.st.CommitKeybag(ch.Blob, ch.Dropped, func() error { return failpoint("setpasscode:in-transaction") }); err != nil {
			return err
		}
		if err := failpoint("setpasscode:stored"); err != nil {
			return err
		}
		db.st.Keybag().Commit(ch)
		committed = true
		return nil
	}))
}

// UnlockDelay returns the number of consecutive failed passcode attempts
// and how long the next attempt must wait (0: it may go ahead).
func (db *DB) UnlockDelay() (failures int, wait time.Duration, err error) {
	leave, err := db.enter()
	if err != nil {
		return 0, 0, wrapErr("UnlockDelay", err)
	}
	defer leave()
	now := db.now()
	a, err := db.st.Attempts(now)
	if err != nil {
		return 0, 0, wrapErr("UnlockDelay", err)
	}
	return int(a.Failures), a.Wait(now), nil
}

// checkPasscode runs one passcode attempt: the throttle decides whether it
// may run at all, the attempt is recorded durably first, then check runs
// (the only thing that evaluates the passcode); a success clears the
// record, a failure may wipe the store.
func (db *DB) checkPasscode(passcode []byte, check func() error) error {
	db.attemptMu.Lock()
	defer db.attemptMu.Unlock()
	if db.isClosed() {
		return status.New(status.NotAvailable, "the store is closed")
	}
	kb := db.st.Keybag()
	if !kb.HasPasscode() {
		// Nothing to guess: no counting, no throttling.
		if err := check(); errors.Is(err, protect.ErrWrongPasscode) {
			return status.New(status.AuthFailed, "no passcode is set: give an empty passcode")
		} else if err != nil {
			return err
		}
		return nil
	}
	now := db.now()
	a, err := db.st.Attempts(now)
	if err != nil {
		return err
	}
	if w := a.Wait(now); w > 0 {
		return status.New(status.AuthFailed, "%s: try again in %v", attempts(a.Failures), w.Round(time.Second))
	}
	a.Failures++
	a.Last = now
	if err := db.st.SetAttempts(a); err != nil {
		return err // never evaluate a passcode whose attempt is not on disk
	}
	if err := failpoint("passcode:attempt-recorded"); err != nil {
		return err
	}
	err = check()
	switch {
	case errors.Is(err, protect.ErrWrongPasscode):
		if db.wipeAfterFailures && a.Failures >= protect.WipeAfter {
			if werr := db.wipe(); werr != nil {
				return werr
			}
			return status.New(status.AuthFailed, "wrong passcode: %s, the store has been erased", attempts(a.Failures))
		}
		detail := fmt.Sprintf("wrong passcode (%s)", attempts(a.Failures))
		if d := protect.Delay(a.Failures); d > 0 {
			detail += fmt.Sprintf("; next attempt allowed in %v", d)
		}
		return status.New(status.AuthFailed, "%s", detail)
	case err != nil:
		return err
	}
	return db.st.SetAttempts(protect.Attempts{})
}

func attempts(n uint32) string {
	if n == 1 {
		return "1 failed attempt"
	}
	return fmt.Sprintf("%d failed attempts", n)
}

func (db *DB) wipe() error {
	db.gate.Lock()
	defer db.gate.Unlock()
	return db.st.Wipe()
}

// failpoint runs the test hook for a named step (see internal/failpoint).
func failpoint(step string) error { return fp.Hit(step) }
