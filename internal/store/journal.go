package store

import (
	"bytes"
	"encoding/binary"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/schema"
)

// The sync journal lists, in commit order, the synchronizable items
// (sync = 1) that changed: a sync engine reads it, sends the items' current
// states and trims what it sent. It is written in the transaction that
// makes the change, so a change is journaled exactly when it is
// committed, and survives a crash or a long time offline. Changes applied
// from other stores are not journaled (Tx.SkipJournal), so they do not
// echo back.
//
// Bucket "journal": sequence (8 bytes big-endian) → class code (4) ‖ item
// ID (16) ‖ op ('p' stored, 'd' deleted). Bucket "syncmeta" holds the
// engine's own small records (its last applied revision, ...). Both are
// created on first use.

var (
	bucketJournal  = []byte("journal")
	bucketSyncMeta = []byte("syncmeta")
)

// JournalEntry is one journaled change.
type JournalEntry struct {
	Seq     uint64
	Class   *schema.Class
	RefID   [16]byte
	Deleted bool // the item was deleted (without a tombstone)
}

// SkipJournal makes this transaction's changes unjournaled (changes that
// came from another store).
func (tx *Tx) SkipJournal() { tx.skipJournal = true }

// journal records a change to r if it is a synchronizable item.
func (tx *Tx) journal(r *Record, deleted bool) error {
	if tx.skipJournal || !r.Readable() || !r.HasTag(tx.db.Tag(r.Class, schema.Field{Attr: r.Class.Attr("sync"), Value: schema.Number(1)})) {
		return nil
	}
	b, err := tx.btx.CreateBucketIfNotExists(bucketJournal)
	if err != nil {
		return err
	}
	b.FillPercent = appendFill
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	v := make([]byte, 0, 21)
	v = append(v, r.Class.Code...)
	v = append(v, r.RefID[:]...)
	op := byte('p')
	if deleted {
		op = 'd'
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), append(v, op))
}

// Journal calls fn for each journaled change, oldest first; fn returns
// false to stop.
func (tx *Tx) Journal(fn func(JournalEntry) (bool, error)) error {
	b := tx.btx.Bucket(bucketJournal)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 || len(v) != 21 {
			continue // damaged: Check reports the file; skip it here
		}
		e := JournalEntry{Seq: binary.BigEndian.Uint64(k), Class: schema.Lookup(string(v[:4])), Deleted: v[20] == 'd'}
		if e.Class == nil || e.Class.IsIdentity() {
			continue
		}
		copy(e.RefID[:], v[4:20])
		more, err := fn(e)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// TrimJournal removes the entries up to and including seq.
func (tx *Tx) TrimJournal(seq uint64) error {
	b := tx.btx.Bucket(bucketJournal)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// JournalLen returns the number of journaled changes.
func (tx *Tx) JournalLen() int {
	if b := tx.btx.Bucket(bucketJournal); b != nil {
		return b.Stats().KeyN
	}
	return 0
}

// SyncMeta returns a sync engine record (nil when unset).
func (tx *Tx) SyncMeta(key string) []byte {
	if b := tx.btx.Bucket(bucketSyncMeta); b != nil {
		if v := b.Get([]byte(key)); v != nil && fitsFile(tx.btx, v) {
			return bytes.Clone(v)
		}
	}
	return nil
}

// SetSyncMeta stores a sync engine record (nil value deletes it).
func (tx *Tx) SetSyncMeta(key string, value []byte) error {
	b, err := tx.btx.CreateBucketIfNotExists(bucketSyncMeta)
	if err != nil {
		return err
	}
	if value == nil {
		return b.Delete([]byte(key))
	}
	return b.Put([]byte(key), value)
}

// dropSyncBuckets removes the journal and the engine's records (a wipe).
func (tx *Tx) dropSyncBuckets() error {
	for _, name := range [][]byte{bucketJournal, bucketSyncMeta} {
		if tx.btx.Bucket(name) != nil {
			if err := tx.btx.DeleteBucket(name); err != nil && err != bbolt.ErrBucketNotFound {
				return err
			}
		}
	}
	return nil
}
