package store

import (
	"bytes"
	"encoding/binary"
	"time"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

var keyAttempts = []byte("attempts")

// Device returns the store's device.
func (db *DB) Device() protect.Device { return db.device }

// Attempts reads the passcode attempt record.
func (db *DB) Attempts(now time.Time) (protect.Attempts, error) {
	var a protect.Attempts
	err := db.bolt.View(func(btx *bbolt.Tx) error {
		a, _ = db.kb.UnmarshalAttempts(btx.Bucket(bucketMeta).Get(keyAttempts), now)
		return nil
	})
	return a, mapBoltError(err)
}

// SetAttempts stores the attempt record in its own synced transaction.
// When it returns nil the record is on disk.
func (db *DB) SetAttempts(a protect.Attempts) error {
	return db.Update(func(tx *Tx) error {
		return tx.btx.Bucket(bucketMeta).Put(keyAttempts, db.kb.MarshalAttempts(a))
	})
}

// RestartThrottle starts the current throttling period again at Open, as a
// device does after a restart during a delay.
func (db *DB) RestartThrottle(now time.Time) error {
	a, err := db.Attempts(now)
	if err != nil || protect.Delay(a.Failures) == 0 {
		return err
	}
	a.Last = now
	return db.SetAttempts(a)
}

// CommitKeybag stores a new keybag and, in the same transaction, deletes
// every item wrapped by a dropped class key, so either the old keybag and
// its items or the new keybag without them is on disk after a crash.
// failpoint, when non-nil, runs inside the transaction after the writes
// (tests use it to fail at that step).
func (db *DB) CommitKeybag(blob []byte, dropped []uint32, failpoint func() error) error {
	return db.Update(func(tx *Tx) error {
		if err := tx.btx.Bucket(bucketMeta).Put(keyKeybag, blob); err != nil {
			return err
		}
		// A new keybag starts with a clean attempt record; with a passcode
		// set, a missing record reads as the worst case.
		if err := tx.btx.Bucket(bucketMeta).Put(keyAttempts, db.kb.MarshalAttempts(protect.Attempts{})); err != nil {
			return err
		}
		for _, id := range dropped {
			if err := tx.deleteByKeyID(id); err != nil {
				return err
			}
		}
		if failpoint != nil {
			return failpoint()
		}
		return nil
	})
}

// deleteByKeyID deletes every item whose item key is wrapped by keyID.
func (tx *Tx) deleteByKeyID(keyID uint32) error {
	for _, c := range schema.Classes() {
		var victims []*Record
		cur := tx.btx.Bucket(classBucket(c)).Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			if len(k) != 8 || len(v) < offKeyID+4 || binary.BigEndian.Uint32(v[offKeyID:]) != keyID {
				continue
			}
			row := binary.BigEndian.Uint64(k)
			if !fitsFile(tx.btx, v) {
				v = nil
			}
			r, err := parseRecord(c, row, bytes.Clone(v))
			if err != nil {
				r = &Record{Class: c, Row: row}
			}
			victims = append(victims, r)
		}
		for _, r := range victims {
			if err := tx.Delete(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// Wipe erases the store: every item, the keyed index and the version
// table go, and a fresh keybag (new store ID, new keys, no passcode)
// replaces the old one, all in one transaction. The old keys are wiped from
// memory. The caller must hold every other operation off.
func (db *DB) Wipe() error {
	storeID := protect.NewStoreID()
	kb, err := protect.NewKeybag(storeID, db.device)
	if err != nil {
		return status.New(status.NotAvailable, "the device secret is not available: %v", err)
	}
	blob, _ := kb.MarshalBinary()
	err = db.Update(func(tx *Tx) error {
		for _, name := range allBuckets() {
			if bytes.Equal(name, bucketMeta) {
				continue
			}
			if err := tx.btx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.btx.CreateBucket(name); err != nil {
				return err
			}
		}
		tx.forgetBuckets()
		// Every list changes: no entry read before this commit may serve
		// a reader of it or after it (lookups.go).
		tx.db.lookups.reset(tx.db.rows.Load(), tx.txid())
		if err := tx.dropLog(); err != nil {
			return err
		}
		if err := tx.dropSyncBuckets(); err != nil {
			return err
		}
		meta := tx.btx.Bucket(bucketMeta)
		if err := meta.Delete(keyAttempts); err != nil {
			return err
		}
		tip, err := tx.writeTip()
		if err != nil {
			return err
		}
		for _, k := range [][]byte{keyVRoot, keyVTail} {
			if err := tip.Delete(k); err != nil {
				return err
			}
		}
		if err := meta.Put(keyStoreID, storeID[:]); err != nil {
			return err
		}
		// The generation goes on under the new keybag's key: a wipe is
		// one more commit, never a way back to generation 0.
		if err := tx.bumpGeneration(db.kb, kb); err != nil {
			return err
		}
		return meta.Put(keyKeybag, blob)
	})
	if err != nil {
		kb.Close()
		return err
	}
	old := db.kb
	db.kb, db.ix, db.storeID = kb, kb.Indexer(), storeID
	db.clearTags() // tags of the old index key
	db.badChunks, db.rootMatches = map[uint64]bool{}, true
	old.Close()
	return nil
}
