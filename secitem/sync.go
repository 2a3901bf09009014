package secitem

import (
	"bytes"
	"encoding/binary"

	"time"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/schema"
)

// The replication interface: what a sync engine (such as the etcdsync
// module) needs from a store, and nothing about how it transports items.
//
//   - Every committed change to a synchronizable item (sync = 1) is
//     journaled in the same transaction. SyncChanges reads the journal with
//     each item's current state; AckSyncChanges trims what was sent.
//   - ApplySyncItems applies items received from other stores, resolving
//     conflicts deterministically (the later mdat wins; equal dates, the
//     greater UUID), without journaling them again.
//   - SyncState and ApplySyncItems' state argument keep the engine's own
//     records (its last applied revision) in the store, committed with the
//     items they describe.
//
// Items travel with every attribute and their secrets; a sync engine must
// seal them end to end. Non-synchronizable items never appear here.

// SyncItem is one synchronizable item (or tombstone) as it travels
// between stores.
type SyncItem struct {
	// Class is the item's class code.
	Class string
	// Key is the item's identity across stores: its class and every
	// primary-key attribute, canonically encoded. It reveals the primary
	// key's values: hash it under a secret key before using it where
	// others can see it.
	Key []byte
	// UUID is the item's kSecAttrUUID.
	UUID string
	// Modified is its mdat; with UUID it orders versions (Newer).
	Modified time.Time
	// Tombstone marks a deleted item.
	Tombstone bool

	fields, secret schema.Fields
}

// Newer reports whether it should replace other: a later mdat wins, and
// of two versions modified at the same instant the greater UUID (so every
// store picks the same one).
func (it *SyncItem) Newer(other *SyncItem) bool {
	if !it.Modified.Equal(other.Modified) {
		return it.Modified.After(other.Modified)
	}
	return it.UUID > other.UUID
}

// MarshalBinary encodes the item, secrets included.
func (it *SyncItem) MarshalBinary() ([]byte, error) {
	return store.EncodeItem(schema.Lookup(it.Class), it.fields, it.secret), nil
}

// UnmarshalSyncItem decodes an item made by MarshalBinary and checks that
// it may be synchronized.
func UnmarshalSyncItem(b []byte) (*SyncItem, error) {
	c, fields, secret, err := store.DecodeItem(b)
	if err != nil {
		return nil, newErr("UnmarshalSyncItem", ErrDecode, "the item does not decode")
	}
	if s, _ := fields.Get(AttrSynchronizable); s.Num != 1 {
		return nil, newErr("UnmarshalSyncItem", ErrParam, "the item is not synchronizable")
	}
	if err := checkSyncable(fields); err != nil {
		return nil, wrapErr("UnmarshalSyncItem", err)
	}
	return newSyncItem(c, fields, secret), nil
}

func newSyncItem(c *schema.Class, fields, secret schema.Fields) *SyncItem {
	it := &SyncItem{Class: c.Code, Key: syncKey(c, fields), fields: fields, secret: secret}
	if u, ok := fields.Get(AttrSyncUUID); ok {
		it.UUID = u.Str
	}
	if m, ok := fields.Get(AttrModificationDate); ok {
		it.Modified = m.Time
	}
	t, _ := fields.Get(AttrTombstone)
	it.Tombstone = t.Num == 1
	return it
}

// syncKey encodes an item's class and primary key (missing attributes as
// their defaults), each value length-prefixed.
func syncKey(c *schema.Class, fields schema.Fields) []byte {
	return fields.AppendKey(append([]byte(nil), c.Code...), c.PrimaryKey())
}

// SyncChange is one journaled change.
type SyncChange struct {
	// Seq orders changes; AckSyncChanges takes the last one sent.
	Seq uint64
	// Item is the item's current state, or nil when it is gone without a
	// tombstone (deleted with u_Tomb false, or while locked): there is
	// nothing to send.
	Item *SyncItem
}

// SyncChanges calls fn for each journaled change to a synchronizable item,
// oldest first, with the item's current state (so several changes to one
// item send its latest state more than once, harmlessly). fn returns false
// to stop. An item whose class key is unavailable stops the listing with
// ErrInteractionNotAllowed: the engine tries again after Unlock.
func (db *DB) SyncChanges(fn func(SyncChange) bool) error {
	leave, err := db.enter()
	if err != nil {
		return wrapErr("SyncChanges", err)
	}
	defer leave()
	err = db.st.View(func(tx *store.Tx) error {
		return tx.Journal(func(e store.JournalEntry) (bool, error) {
			ch := SyncChange{Seq: e.Seq}
			r, err := tx.ByRef(e.Class, e.RefID)
			if err != nil {
				return false, err
			}
			if r != nil && isSync(tx, r) {
				attrs, secret, err := tx.Open(r, true)
				switch status.Of(err) {
				case status.OK:
					ch.Item = newSyncItem(e.Class, attrs, secret)
				case status.Decode:
					// A damaged item is not sent; Check reports it.
				default:
					return false, err
				}
			}
			return fn(ch), nil
		})
	})
	return wrapErr("SyncChanges", err)
}

// AckSyncChanges removes the journaled changes up to and including seq.
func (db *DB) AckSyncChanges(seq uint64) error {
	leave, err := db.enter()
	if err != nil {
		return wrapErr("AckSyncChanges", err)
	}
	defer leave()
	return wrapErr("AckSyncChanges", db.st.Update(func(tx *store.Tx) error { return tx.TrimJournal(seq) }))
}

// SyncStatus says how much is waiting to be sent.
type SyncStatus struct {
	Pending int // journaled changes not yet acknowledged
}

// SyncStatus returns the journal's length.
func (db *DB) SyncStatus() (SyncStatus, error) {
	leave, err := db.enter()
	if err != nil {
		return SyncStatus{}, wrapErr("SyncStatus", err)
	}
	defer leave()
	var st SyncStatus
	err = db.st.View(func(tx *store.Tx) error {
		st.Pending = tx.JournalLen()
		return nil
	})
	return st, wrapErr("SyncStatus", err)
}

// SyncState returns a record the sync engine keeps in the store (nil when
// unset).
func (db *DB) SyncState(key string) ([]byte, error) {
	leave, err := db.enter()
	if err != nil {
		return nil, wrapErr("SyncState", err)
	}
	defer leave()
	var v []byte
	err = db.st.View(func(tx *store.Tx) error {
		v = tx.SyncMeta(key)
		return nil
	})
	return v, wrapErr("SyncState", err)
}

// LocalSyncItem returns this store's version of the item with the given
// Key (tombstones included), or nil.
func (db *DB) LocalSyncItem(key []byte) (*SyncItem, error) {
	leave, err := db.enter()
	if err != nil {
		return nil, wrapErr("LocalSyncItem", err)
	}
	defer leave()
	var out *SyncItem
	err = db.st.View(func(tx *store.Tx) error {
		it, _, err := db.localSync(tx, key)
		out = it
		return err
	})
	return out, wrapErr("LocalSyncItem", err)
}

// localSync finds the local item with a sync key.
func (db *DB) localSync(tx *store.Tx, key []byte) (*SyncItem, *store.Record, error) {
	if len(key) < 4 {
		return nil, nil, status.New(status.Param, "not a sync key")
	}
	c := schema.Lookup(string(key[:4]))
	if c == nil || c.IsIdentity() {
		return nil, nil, status.New(status.Param, "not a sync key")
	}
	fields, err := fieldsOfSyncKey(c, key[4:])
	if err != nil {
		return nil, nil, err
	}
	r, err := tx.ByPrimaryKey(c, fields)
	if err != nil || r == nil {
		return nil, nil, err
	}
	if !r.Readable() {
		return nil, r, nil
	}
	attrs, secret, err := tx.Open(r, true)
	switch status.Of(err) {
	case status.OK:
		return newSyncItem(c, attrs, secret), r, nil
	case status.Decode:
		return nil, r, nil // damaged: replaced by whatever arrives
	}
	return nil, r, err
}

// fieldsOfSyncKey decodes the primary-key values of a sync key as the
// canonical values (strings and data compare alike, so data will do).
func fieldsOfSyncKey(c *schema.Class, b []byte) (schema.Fields, error) {
	var fs schema.Fields
	for _, a := range c.PrimaryKey() {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) || l == 0 {
			return nil, status.New(status.Param, "malformed sync key")
		}
		can := b[k : k+int(l)]
		b = b[k+int(l):]
		v, err := valueOfCanonical(can)
		if err != nil {
			return nil, err
		}
		fs = fs.Set(a, v)
	}
	if len(b) != 0 {
		return nil, status.New(status.Param, "malformed sync key")
	}
	return fs, nil
}

func valueOfCanonical(can []byte) (schema.Value, error) {
	switch can[0] {
	case 'b':
		return schema.Data(bytes.Clone(can[1:])), nil
	case 'n':
		if len(can) == 9 {
			return schema.Number(int64(binary.BigEndian.Uint64(can[1:]))), nil
		}
	case 'd':
		if len(can) == 13 {
			return schema.Date(time.Unix(int64(binary.BigEndian.Uint64(can[1:])), int64(binary.BigEndian.Uint32(can[9:])))), nil
		}
	}
	return schema.Value{}, status.New(status.Param, "malformed sync key")
}

// ApplySyncItems applies items received from other stores, in one
// transaction with the engine's state records (nil values delete). An item
// replaces the local version of the same Key only when it is Newer (a
// tombstone included); the local one, if newer, stays and is expected to
// travel the other way. Applied items are not journaled. An item whose
// protection class key is unavailable stops the batch with
// ErrInteractionNotAllowed and nothing is applied: try again after
// Unlock. It returns how many items replaced or added a local version.
func (db *DB) ApplySyncItems(items []*SyncItem, state map[string][]byte) (applied int, err error) {
	leave, err := db.enter()
	if err != nil {
		return 0, wrapErr("ApplySyncItems", err)
	}
	defer leave()
	err = db.st.Update(func(tx *store.Tx) error {
		tx.SkipJournal()
		applied = 0
		for _, it := range items {
			c := schema.Lookup(it.Class)
			if c == nil || it.fields == nil {
				return status.New(status.Param, "not a sync item")
			}
			local, r, err := db.localSync(tx, it.Key)
			if err != nil {
				return err
			}
			if local != nil && !it.Newer(local) {
				continue
			}
			if err := tx.CanWrite(mustPdmn(it.fields)); err != nil {
				return err
			}
			if r != nil {
				_, _, err = tx.Rewrite(r, it.fields, it.secret)
			} else {
				_, _, err = tx.Insert(c, it.fields, it.secret)
			}
			if err != nil {
				return err
			}
			applied++
		}
		for k, v := range state {
			if err := tx.SetSyncMeta(k, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, wrapErr("ApplySyncItems", err)
	}
	return applied, nil
}

// SetSyncState stores the engine's records without applying items.
func (db *DB) SetSyncState(state map[string][]byte) error {
	_, err := db.ApplySyncItems(nil, state)
	return err
}
