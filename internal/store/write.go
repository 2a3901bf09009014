package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// Sealed is an item encrypted and ready to be stored at its row.
type Sealed struct {
	Class  *schema.Class
	Row    uint64
	Fields schema.Fields // the attributes as stored (with sha1)

	rec     []byte
	posted  []protect.Tag
	lookup  protect.Tag   // the lookup-key posting (one of posted)
	shared  []protect.Tag // the primary key's tags outside the lookup key
	version uint64
}

// Prepare seals a new item of class c at a fresh row, outside any
// transaction, so the work (tags, a fresh item key, two seals) runs in the
// caller's goroutine and concurrent callers share only the commit. fields
// must hold pdmn; secret holds v_Data and the other secrets; sha1 is
// computed here. It fails with InteractionNotAllowed when the class key is
// not in memory and NotAvailable for akpu without a passcode. Rows are
// never reused: one prepared but never stored is simply skipped.
func (db *DB) Prepare(c *schema.Class, fields, secret schema.Fields) (*Sealed, error) {
	// Counted for the group commit (see linger): a caller sealing now is
	// about to call Write.
	db.group.sealing.Add(1)
	defer db.group.sealing.Add(-1)
	row := db.rows.Add(1)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		panic("store: crypto/rand failed: " + err.Error())
	}
	return db.seal(c, row, db.ix.RefID(row, rnd), 1, fields, secret)
}

// InsertSealed stores an item made by Prepare. Uniqueness is the caller's
// business (ByPrimaryKey).
func (tx *Tx) InsertSealed(s *Sealed) (*Record, error) {
	if !tx.writable {
		return nil, status.New(status.ReadOnly, "the store is open read-only")
	}
	tip, err := tx.writeTip()
	if err != nil {
		return nil, err
	}
	if tip.Sequence() < s.Row {
		if err := tip.SetSequence(s.Row); err != nil {
			return nil, err
		}
	}
	return tx.put(s)
}

// Insert is Prepare followed by InsertSealed, for callers that do not
// share commits.
func (tx *Tx) Insert(c *schema.Class, fields, secret schema.Fields) (*Record, schema.Fields, error) {
	if !tx.writable {
		return nil, nil, status.New(status.ReadOnly, "the store is open read-only")
	}
	s, err := tx.db.Prepare(c, fields, secret)
	if err != nil {
		return nil, nil, err
	}
	r, err := tx.InsertSealed(s)
	return r, s.Fields, err
}

// Rewrite replaces an item's contents in place: same row, same item ID
// (so the same persistent reference), version + 1, a fresh item key
// wrapped under the class key of the (possibly new) pdmn. It returns the
// new record and the attributes as stored.
func (tx *Tx) Rewrite(old *Record, fields, secret schema.Fields) (*Record, schema.Fields, error) {
	if !tx.writable {
		return nil, nil, status.New(status.ReadOnly, "the store is open read-only")
	}
	if err := tx.dropPostings(old); err != nil {
		return nil, nil, err
	}
	s, err := tx.db.seal(old.Class, old.Row, old.RefID, old.Version+1, fields, secret)
	if err != nil {
		return nil, nil, err
	}
	r, err := tx.put(s)
	return r, s.Fields, err
}

// Delete removes an item: its record, its postings and its version. It
// needs no key, so it works whatever the lock state.
func (tx *Tx) Delete(r *Record) error {
	if err := tx.journal(r, true); err != nil {
		return err
	}
	if err := tx.dropPostings(r); err != nil {
		return err
	}
	items, err := tx.items(r.Class)
	if err != nil {
		return err
	}
	if err := items.Delete(rowKey(r.Row)); err != nil {
		return err
	}
	return tx.setVersion(r.Row, 0)
}

// dropPostings removes the postings r owns: those its header lists, or,
// when the header is unreadable, every posting of its row.
func (tx *Tx) dropPostings(r *Record) error {
	if r.hdrLen > 0 {
		return tx.removePostings(r)
	}
	return tx.removeAllPostings(r.Row)
}

func (tx *Tx) removePostings(r *Record) error {
	posted := r.postedTags()
	for i := 0; i < r.nposted; i++ {
		var t protect.Tag
		copy(t[:], posted[i*tagSize:])
		if err := tx.unpost(t, r.Row); err != nil {
			return err
		}
	}
	return nil
}

// removeAllPostings removes every posting of a row whose header is too
// damaged to say which it owns (a full index scan; only for corrupt rows).
func (tx *Tx) removeAllPostings(row uint64) error {
	tx.unpostRow(row)
	idx := tx.indexForWrite()
	var dead [][]byte
	cur := idx.Cursor()
	for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
		if len(k) == tagSize+8 && binary.BigEndian.Uint64(k[tagSize:]) == row {
			dead = append(dead, bytes.Clone(k))
		}
	}
	for _, k := range dead {
		var t protect.Tag
		copy(t[:], k)
		tx.db.lookups.changed(t, tx.txid())
		if err := idx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// CanWrite checks that an item of protection class pdmn can be encrypted
// now: InteractionNotAllowed when its class key is not in memory,
// NotAvailable for akpu without a passcode.
func (tx *Tx) CanWrite(pdmn string) error {
	if !tx.writable {
		return status.New(status.ReadOnly, "the store is open read-only")
	}
	_, err := tx.db.keyID(pdmn)
	return err
}

// CheckProtection checks that pdmn names a class items can be stored in
// now (see CanWrite), outside a transaction.
func (db *DB) CheckProtection(pdmn string) error {
	_, err := db.keyID(pdmn)
	return err
}

func (db *DB) keyID(pdmn string) (uint32, error) {
	prot, ok := protect.ParseClass(pdmn)
	if !ok {
		return 0, status.New(status.Param, "invalid protection class %q", pdmn)
	}
	keyID, err := db.kb.KeyID(prot)
	switch {
	case errors.Is(err, protect.ErrLocked):
		return 0, status.New(status.InteractionNotAllowed, "the %s class key is not available in this lock state", prot)
	case errors.Is(err, protect.ErrNoPasscode):
		return 0, status.New(status.NotAvailable, "%s items need a passcode to be set", prot)
	case err != nil:
		return 0, err
	}
	return keyID, nil
}

// seal builds an item's record: header, tags, a fresh item key wrapped by
// its class key, the sealed attributes and secret. It touches no
// transaction.
func (db *DB) seal(c *schema.Class, row uint64, refID [16]byte, version uint64, fields, secret schema.Fields) (*Sealed, error) {
	for _, fs := range []schema.Fields{fields, secret} {
		for _, f := range fs {
			if f.Value.Len() > schema.MaxValueSize {
				return nil, status.New(status.Param, "the value of %q is larger than the %d MiB limit", f.Attr.Code, schema.MaxValueSize>>20)
			}
		}
	}
	pdmn, _ := fields.Get("pdmn")
	keyID, err := db.keyID(pdmn.Str)
	if err != nil {
		return nil, err
	}
	// The attributes with sha1 go to a list of their own: inserting sha1
	// into the caller's list, when it has spare capacity, would shift the
	// caller's own attributes in place.
	sum := contentHash(fields, secret)
	fields = append(make(schema.Fields, 0, len(fields)+1), fields...).Set(c.Attr("sha1"), schema.Data(sum))

	lookup := db.lookupTag(c, fields)
	posted, tags, shared := db.itemTags(c, lookup, fields)

	// Both plaintexts are encoded first, into one buffer allocated at its
	// final size (so no outgrown copy of a secret is left uncleared), and
	// the record is allocated once, at its final size, and sealed into in
	// place.
	pt := encodeFields(make([]byte, 0, encodedLen(fields)+encodedLen(secret)), fields)
	nAttrs := len(pt)
	pt = encodeFields(pt, secret)
	defer clear(pt)
	hdrLen := headerBase + (len(posted)+len(tags))*tagSize
	sealedAttrs := nAttrs + protect.BlobOverhead
	size := hdrLen + protect.WrappedItemKeySize + uvarintLen(uint64(sealedAttrs)) + sealedAttrs + len(pt) - nAttrs + protect.BlobOverhead

	rec := make([]byte, headerBase, size)
	rec[0] = recordFormat
	binary.BigEndian.PutUint32(rec[offKeyID:], keyID)
	copy(rec[offRefID:], refID[:])
	binary.BigEndian.PutUint64(rec[offVersion:], version)
	rec[offCounts] = byte(len(posted))
	rec[offCounts+1] = byte(len(tags))
	for _, t := range posted {
		rec = append(rec, t[:]...)
	}
	for _, t := range tags {
		rec = append(rec, t[:]...)
	}
	hdr := rec[:hdrLen:hdrLen]

	key := protect.NewItemKey()
	defer key.Wipe()
	var abuf [512]byte
	a := aad(abuf[:0], partKey, &db.storeID, c.Code, row, hdr)
	rec, err = db.kb.WrapItemKey(rec, keyID, &key, a)
	if err != nil {
		return nil, status.New(status.InteractionNotAllowed, "the %s class key is not available in this lock state", pdmn.Str)
	}
	rec = binary.AppendUvarint(rec, uint64(sealedAttrs))
	rec = protect.SealBlob(rec, &key, aad(abuf[:0], partAttrs, &db.storeID, c.Code, row, hdr), pt[:nAttrs])
	rec = protect.SealBlob(rec, &key, aad(abuf[:0], partSecret, &db.storeID, c.Code, row, hdr), pt[nAttrs:])
	return &Sealed{Class: c, Row: row, Fields: fields, rec: rec, posted: posted, lookup: lookup, shared: shared, version: version}, nil
}

// put stores a sealed item: its record, its postings, its version.
func (tx *Tx) put(s *Sealed) (*Record, error) {
	items, err := tx.items(s.Class)
	if err != nil {
		return nil, err
	}
	items.FillPercent = appendFill
	if err := items.Put(rowKey(s.Row), s.rec); err != nil {
		return nil, err
	}
	for _, t := range s.posted {
		tx.post(t, s.Row)
	}
	if err := tx.setVersion(s.Row, s.version); err != nil {
		return nil, err
	}
	r, err := parseRecord(s.Class, s.Row, s.rec)
	if err != nil {
		return nil, err
	}
	return r, tx.journal(r, false)
}

// appendFill is the fill percent of the buckets keyed by row (records and
// version chunks): rows only grow, so pages are filled before they split
// instead of being left half empty (bbolt's default suits random keys,
// like the index's).
const appendFill = 0.95

// itemTags returns an item's tags, computing each once:
//   - posted: the postings it owns (its lookup key, its indexed
//     attributes and, for pkhh/klbl, the identity join tag);
//   - tags: the tags of every attribute value an equality filter can
//     match: the stored ones, plus the defaults of missing primary-key
//     attributes (a missing vwht equals "" in a query, as the device's SQL
//     column does);
//   - shared: the tags of its primary-key attributes outside the lookup
//     key, as sharedKeyTags gives them (for the uniqueness probe).
func (db *DB) itemTags(c *schema.Class, lookup protect.Tag, fields schema.Fields) (posted, tags, shared []protect.Tag) {
	posted = []protect.Tag{lookup}
	tags = make([]protect.Tag, 0, len(fields)+len(c.PrimaryKey()))
	for _, f := range fields {
		t := db.Tag(c, f)
		tags = append(tags, t)
		if f.Attr.Has(schema.Indexed) {
			posted = append(posted, t)
		}
		if f.Attr.Has(schema.JoinKey) {
			posted = append(posted, db.JoinTag(f.Value.Bytes()))
		}
	}
	for _, a := range c.PrimaryKey() {
		i := slices.IndexFunc(fields, func(f schema.Field) bool { return f.Attr.Code == a.Code })
		var t protect.Tag
		if i >= 0 {
			t = tags[i] // tags[:len(fields)] follow fields
		} else {
			def, _ := a.Default()
			t = db.Tag(c, schema.Field{Attr: a, Value: def})
			tags = append(tags, t)
		}
		if !slices.Contains(c.LookupKey(), a) {
			shared = append(shared, t)
		}
	}
	return dedupe(posted), dedupe(tags), shared
}

func dedupe(tags []protect.Tag) []protect.Tag {
	slices.SortFunc(tags, compareTags)
	return slices.Compact(tags)
}

// contentHash is the item's sha1 attribute: SHA-1 over the encoding of its
// attributes and secret (not Apple's DER; secitemdb's own canonical form),
// leaving out the UUID, so two stores holding the same item (same
// contents, different UUIDs) give it the same hash. It is stored only
// inside the sealed attributes.
func contentHash(fields, secret schema.Fields) []byte {
	h := sha1.New()
	var buf []byte
	for _, fs := range []schema.Fields{fields, secret} {
		for _, f := range fs {
			if f.Attr.Has(schema.Computed) || f.Attr.Code == "UUID" {
				continue
			}
			buf = append(buf[:0], f.Attr.Code...)
			buf = append(buf, 0)
			buf = f.Value.Canonical(buf)
			buf = binary.BigEndian.AppendUint32(buf, uint32(len(buf)))
			h.Write(buf)
		}
	}
	return h.Sum(nil)
}
