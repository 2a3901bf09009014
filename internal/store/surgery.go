package store

import (
	"bytes"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// RawRecord returns the stored bytes of the item a persistent reference
// names. It is for inspection tools and fault-injection tests.
func (db *DB) RawRecord(pref []byte) ([]byte, error) {
	c, row, err := db.refRow(pref)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = db.bolt.View(func(btx *bbolt.Tx) error {
		v := btx.Bucket(classBucket(c)).Get(rowKey(row))
		if !fitsFile(btx, v) {
			return ErrCorrupt
		}
		out = bytes.Clone(v)
		return nil
	})
	return out, err
}

// PutRawRecord replaces the stored bytes of the item a persistent
// reference names, bypassing every check. It exists to simulate damage in
// fault-injection tests; nothing else may call it.
func (db *DB) PutRawRecord(pref, raw []byte) error {
	c, row, err := db.refRow(pref)
	if err != nil {
		return err
	}
	return db.bolt.Update(func(btx *bbolt.Tx) error {
		return btx.Bucket(classBucket(c)).Put(rowKey(row), raw)
	})
}

func (db *DB) refRow(pref []byte) (*schema.Class, uint64, error) {
	if len(pref) != 20 {
		return nil, 0, status.New(status.Param, "a persistent reference has 20 bytes")
	}
	c := schema.Lookup(string(pref[:4]))
	if c == nil || c.IsIdentity() {
		return nil, 0, status.New(status.NoSuchClass, "no such class")
	}
	var id [16]byte
	copy(id[:], pref[4:])
	return c, db.ix.RowOf(id), nil
}
