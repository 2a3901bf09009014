// Package failpoint lets tests make a named step of an operation fail, or
// crash the process there, to check that every step leaves the store in a
// state it can recover from. With no hook set (always, outside tests) a
// failpoint costs one atomic load.
//
// The steps, in the order an operation meets them:
//
//	store:before-commit      a write transaction's changes are made, not committed
//	store:after-commit       committed and synced, before the caller hears of it
//	store:before-anchor      committed, before the rollback anchor is advanced
//	setpasscode:prepared     the new keybag is computed, nothing stored
//	setpasscode:in-transaction  the new keybag is written, not committed
//	setpasscode:stored       the new keybag is committed, not yet in force in memory
//	passcode:attempt-recorded   an attempt is on disk, the passcode not yet checked
//	backup:item-written      one more item is in the backup stream
//	restore:item-added       one more item is in the restore transaction
package failpoint

import "sync/atomic"

// Hook decides what happens at a step: nil lets it proceed, an error makes
// it fail with that error. A hook may also end the process (tests of
// crash recovery send themselves SIGKILL).
type Hook func(step string) error

var hook atomic.Pointer[Hook]

// Set installs h for every step (nil removes it). Tests only.
func Set(h Hook) {
	if h == nil {
		hook.Store(nil)
		return
	}
	hook.Store(&h)
}

// Hit runs the hook for step, if one is set.
func Hit(step string) error {
	if h := hook.Load(); h != nil {
		return (*h)(step)
	}
	return nil
}
