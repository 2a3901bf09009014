package secitem

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/query"
	"github.com/secitemdb/secitemdb/schema"
)

// Tombstones (apple-reference.md h): a tombstone is an item with tomb = 1
// that keeps only its primary key and its authenticated metadata, no
// secret. Deleting a synchronizable item, or an Update that moves one to a
// new primary key, leaves one, so the deletion can travel to the other
// stores of its sync group; u_Tomb overrides in both directions. Queries
// see tombstones only when they name tomb; an Add or Update that collides
// with one replaces it.

// tombstoneKeeps are the attributes a tombstone keeps besides the primary
// key.
var tombstoneKeeps = map[string]bool{
	AttrCreationDate: true, AttrAccessible: true, AttrAccessGroup: true, AttrSynchronizable: true,
	AttrMultiUser: true, AttrSyncViewHint: true, AttrTokenID: true, AttrSyncUUID: true, "ggrp": true,
}

// wantsTombstone decides whether removing r (a delete, or an update
// moving it off its primary key) leaves a tombstone: u_Tomb when given,
// otherwise whether r is a live synchronizable item.
func wantsTombstone(tx *store.Tx, p *query.Plan, r *store.Record) bool {
	if t := p.Use.Tombstones; t != nil {
		return *t
	}
	return isSync(tx, r) && !isTombstone(tx, r)
}

func isSync(tx *store.Tx, r *store.Record) bool {
	return tx.Has(r, schema.Field{Attr: r.Class.Attr(AttrSynchronizable), Value: schema.Number(1)})
}

func isTombstone(tx *store.Tx, r *store.Record) bool {
	return tx.Has(r, schema.Field{Attr: r.Class.Attr(AttrTombstone), Value: schema.Number(1)})
}

// tombstoneOf returns the attributes of the tombstone of an item with
// attributes attrs: its primary key and metadata, tomb = 1, and mdat moved
// past the item's.
func tombstoneOf(c *schema.Class, attrs schema.Fields, now time.Time) schema.Fields {
	var out schema.Fields
	for _, f := range attrs {
		if f.Attr.Has(schema.PrimaryKey) || tombstoneKeeps[f.Attr.Code] {
			out = out.Set(f.Attr, f.Value)
		}
	}
	out = out.Set(c.Attr(AttrTombstone), schema.Number(1))
	return out.Set(c.Attr(AttrModificationDate), schema.Date(laterThan(attrs, now)))
}

// laterThan is now, or 1 ms past attrs' mdat when the clock has not moved
// past it.
func laterThan(attrs schema.Fields, now time.Time) time.Time {
	if old, ok := attrs.Get(AttrModificationDate); ok && !now.After(old.Time) {
		return old.Time.Add(time.Millisecond)
	}
	return now
}

// deleteOne removes r, leaving a tombstone when the plan and the item say
// so. A tombstone needs r's attributes: when its class key is unavailable
// the item is deleted without one (as on the device, where its sync flag
// cannot be read).
func (db *DB) deleteOne(tx *store.Tx, p *query.Plan, r *store.Record) error {
	if !r.Readable() || !wantsTombstone(tx, p, r) {
		return tx.Delete(r)
	}
	attrs, _, err := tx.Open(r, false)
	if err != nil {
		return tx.Delete(r)
	}
	if err := tx.CanWrite(mustPdmn(attrs)); err != nil {
		return tx.Delete(r)
	}
	_, _, err = tx.Rewrite(r, tombstoneOf(r.Class, attrs, db.now()), nil)
	return err
}

// checkSyncable refuses a synchronizable item that cannot leave its
// device: a ThisDeviceOnly protection class, or a token key.
func checkSyncable(fields schema.Fields) error {
	if s, _ := fields.Get(AttrSynchronizable); s.Num != 1 {
		return nil
	}
	if t, _ := fields.Get(AttrTombstone); t.Num == 1 {
		return nil
	}
	pdmn, _ := fields.Get(AttrAccessible)
	if pc, ok := protect.ParseClass(pdmn.Str); ok && pc.ThisDeviceOnly() {
		return status.New(status.Param, "a synchronizable item cannot use the ThisDeviceOnly protection class %q", pdmn.Str)
	}
	if tk, ok := fields.Get(AttrTokenID); ok && tk.Len() > 0 {
		return status.New(status.Param, "a token-protected key cannot be synchronizable")
	}
	return nil
}

// newUUID returns a random (version 4) UUID in Apple's upper-case form:
// every item gets one on Add, and keeps it; it names the item across the
// stores of a sync group.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// withUUID gives an item without a UUID a new one.
func withUUID(c *schema.Class, fields schema.Fields) schema.Fields {
	if _, ok := fields.Get(AttrSyncUUID); ok {
		return fields
	}
	return fields.Set(c.Attr(AttrSyncUUID), schema.String(newUUID()))
}

// samePrimaryKey reports whether two attribute lists of class c give the
// same primary key (missing attributes as their defaults).
func samePrimaryKey(c *schema.Class, a, b schema.Fields) bool {
	for _, attr := range c.PrimaryKey() {
		va, ok := a.Get(attr.Code)
		if !ok {
			va, _ = attr.Default()
		}
		vb, ok := b.Get(attr.Code)
		if !ok {
			vb, _ = attr.Default()
		}
		if !va.Equal(vb) {
			return false
		}
	}
	return true
}
