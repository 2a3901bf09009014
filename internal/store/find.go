package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// own returns bytes read from bbolt in a form that may be kept for the rest
// of the transaction: in a read-only transaction the mapped bytes
// themselves (they stay valid until it ends, and nothing in secitemdb keeps
// a record past its transaction), in a read-write one a copy (a write can
// remap the file).
func (tx *Tx) own(b []byte) []byte {
	if tx.writable {
		return bytes.Clone(b)
	}
	return b
}

// Tag returns the keyed tag of one attribute value of class c. Tags of
// attributes with few values (schema.FewValues: the implicit sync, tomb
// and musr filters every query carries, the callers' access groups, key
// parameters) are cached; other values are computed each time (caching
// arbitrary query values would let callers grow the cache without bound).
func (db *DB) Tag(c *schema.Class, f schema.Field) protect.Tag {
	if f.Value.CanonicalLen() > maxCachedValue || !f.Attr.Has(schema.FewValues) || len(c.Code) != 4 || len(f.Attr.Code) != 4 {
		var buf [64]byte
		return db.ix.Tag(c.Code, f.Attr.Code, f.Value.Canonical(buf[:0]))
	}
	// The key is the class, the attribute and the canonical value, built
	// in place: looking it up allocates nothing.
	var buf [tagKeyWords * 8]byte
	copy(buf[:4], c.Code)
	copy(buf[4:8], f.Attr.Code)
	key := f.Value.Canonical(buf[:8])
	set := &db.tags.Load().sets[setOf(&buf, len(key))]
	for w := range set {
		if e := set[w].Load(); e != nil && e.key == string(key) {
			return e.tag
		}
	}
	t := db.ix.Tag(c.Code, f.Attr.Code, key[8:])
	e := &tagEntry{key: string(key), tag: t}
	for w := range set {
		if set[w].CompareAndSwap(nil, e) {
			return t
		}
	}
	set[rand.IntN(tagWays)].Store(e) // a full set: replace one at random
	return t
}

// clearTags empties the tag cache (the index key changed).
func (db *DB) clearTags() { db.tags.Store(new(tagCache)) }

// tagCache holds the tags Tag caches, in sets of tagWays entries: a
// value's set is chosen by a hash of its key, and an entry is never
// changed once stored, so readers take no lock. A value whose set is full
// replaces one of its entries at random, so even values that share a set
// do not keep pushing each other out; a lost entry costs a recomputation,
// never a wrong tag. It holds at most tagSets × tagWays entries (about
// 100 KB).
type tagCache struct {
	sets [tagSets][tagWays]atomic.Pointer[tagEntry]
}

type tagEntry struct {
	key string // class code, attribute code, canonical value
	tag protect.Tag
}

const (
	tagSets = 256
	tagWays = 4
)

// tagKeyWords is the size of a key's buffer in 8-byte words: the class
// and attribute codes and the longest cached value, rounded up.
const tagKeyWords = (8 + maxCachedValue + 7) / 8

// setOf returns the set of the key in the first n bytes of buf (the rest
// zero): a multiplicative hash of its words. Nothing depends on its
// quality but the cache's hit rate.
func setOf(buf *[tagKeyWords * 8]byte, n int) uint64 {
	h := uint64(n)
	for i := 0; i < n; i += 8 {
		h = (h ^ binary.LittleEndian.Uint64(buf[i:])) * 0x9e3779b97f4a7c15
	}
	return (h >> 32) % tagSets
}

// maxCachedValue is the longest canonical value whose tag is cached.
const maxCachedValue = 62

// items returns the bucket of class c's records. Identities are not
// stored (they are joins of a certificate and a key): asking for their
// bucket is a caller's bug, reported rather than dereferenced.
func (tx *Tx) items(c *schema.Class) (*bbolt.Bucket, error) {
	if err := stored(c); err != nil {
		return nil, err
	}
	i := classIndex(c)
	if tx.bItems[i] == nil {
		tx.bItems[i] = tx.btx.Bucket(classBucket(c))
	}
	return tx.bItems[i], nil
}

// stored returns an error for a class whose items are not stored.
func stored(c *schema.Class) error {
	if classIndex(c) < 0 {
		return status.New(status.Internal, "class %q has no stored items", c.Code)
	}
	return nil
}

// storedClasses are the classes with a bucket of records, in classIndex
// order.
var storedClasses = [4]*schema.Class{schema.GenericPassword, schema.InternetPassword, schema.Certificate, schema.Key}

// classIndex numbers the stored classes (-1 for identities).
func classIndex(c *schema.Class) int {
	for i, s := range storedClasses {
		if c == s {
			return i
		}
	}
	return -1
}

// Query is what Find matches: equality filters (the caller's and the
// implicit ones), all of which must hold, and an access-group list, one of
// which must hold (nil means any group).
type Query struct {
	Class    *schema.Class
	Filters  schema.Fields
	Implicit schema.Fields
	Groups   []string
	// After skips rows up to and including it (0: from the start), so a
	// long listing can resume where its last page ended.
	After uint64
}

// Find calls fn for every item of q.Class that satisfies q, in row
// (creation) order, deciding from the keyed tags alone: nothing is
// decrypted, so Find works whatever the lock state. Candidates come from
// the postings of the indexed filters (intersected), or from a scan of the
// class when no filter is indexed. fn returns false to stop. fn must not
// write (a cursor is stepping through the index while it runs): writers
// collect the matches first, then change them.
func (tx *Tx) Find(q Query, fn func(*Record) (bool, error)) error {
	c := q.Class
	m, prefixes := tx.compile(q)
	defer tx.releaseCompiled(&m)
	check := func(row uint64, raw []byte) (bool, error) {
		if raw == nil {
			return true, nil // a posting without its record: skip
		}
		r, err := parseRecord(c, row, tx.own(raw))
		if err != nil {
			// A damaged header cannot be matched; the device skips
			// undecodable rows, and Check reports them.
			return true, nil
		}
		if !m.match(r) {
			return true, nil
		}
		return fn(r)
	}
	if len(prefixes) == 0 {
		items, err := tx.items(c)
		if err != nil {
			return err
		}
		cur := items.Cursor()
		var k, v []byte
		if q.After == 0 {
			k, v = cur.First()
		} else if q.After == ^uint64(0) {
			return nil
		} else {
			k, v = cur.Seek(rowKey(q.After + 1))
		}
		for ; k != nil; k, v = cur.Next() {
			if len(k) != 8 {
				continue
			}
			more, err := check(binary.BigEndian.Uint64(k), tx.value(v))
			if err != nil || !more {
				return err
			}
		}
		return nil
	}
	if err := stored(c); err != nil {
		return err
	}
	if q.After == ^uint64(0) {
		return nil
	}
	if m.hasPosted && len(prefixes) == 1 && q.After == 0 && !tx.writable {
		// The whole lookup key: its list, from the lookup cache when
		// this commit's list is there (lookups.go).
		return tx.findPosted(m.posted, func(row uint64) (bool, error) {
			return check(row, tx.getRow(c, row))
		})
	}
	return tx.intersect(prefixes, q.After+1, func(row uint64) (bool, error) {
		return check(row, tx.getRow(c, row))
	})
}

// matcher is a compiled Query: the tags every match must carry and the
// access-group tags one of which it must carry.
type matcher struct {
	posted    protect.Tag // a posting the record must own (its header's list)
	hasPosted bool
	tags      []protect.Tag
	groups    []protect.Tag // nil: any group
	owned     bool          // the slices are the transaction's buffers
}

func (m *matcher) match(r *Record) bool {
	if m.hasPosted && !r.hasPosted(m.posted) {
		return false
	}
	for _, t := range m.tags {
		if !r.HasTag(t) {
			return false
		}
	}
	return m.groups == nil || hasAny(r, m.groups)
}

// compile computes q's tags and the posting prefixes to drive the search:
// the lookup-key posting when the filters pin the whole lookup key (then
// those filters are checked as one: the record's header must list that
// posting, so a posting forged into the unauthenticated index is not
// believed), otherwise the postings of every indexed filter.
func (tx *Tx) compile(q Query) (m matcher, prefixes [][]byte) {
	c := q.Class
	pinned := len(c.LookupKey()) > 0
	for _, a := range c.LookupKey() {
		if _, ok := q.Filters.Get(a.Code); !ok {
			pinned = false
			break
		}
	}
	// One backing array holds the filter tags, the tag the postings are
	// sought under, and the group tags: the transaction's own while no
	// other compiled query holds it (see releaseCompiled), so compiling a
	// common query allocates nothing.
	n, ng := len(q.Filters)+len(q.Implicit), len(q.Groups)
	var backing []protect.Tag
	if !tx.compiledBusy && n+1+ng <= len(tx.tagBuf) && n+1 <= len(tx.prefixBuf) {
		tx.compiledBusy = true
		m.owned = true
		backing = tx.tagBuf[:n+1+ng]
		prefixes = tx.prefixBuf[:0]
	} else {
		backing = make([]protect.Tag, n+1+ng)
		prefixes = make([][]byte, 0, n+1)
	}
	m.tags = backing[:0:n]
	if pinned {
		backing[n] = tx.db.lookupTag(c, q.Filters)
		prefixes = append(prefixes, backing[n][:])
		m.posted, m.hasPosted = backing[n], true
	}
	for _, fs := range [2]schema.Fields{q.Filters, q.Implicit} {
		for _, f := range fs {
			if pinned && slices.Contains(c.LookupKey(), f.Attr) {
				continue
			}
			m.tags = append(m.tags, tx.db.Tag(c, f))
			if !pinned && f.Attr.Has(schema.Indexed) {
				prefixes = append(prefixes, m.tags[len(m.tags)-1][:])
			}
		}
	}
	if q.Groups != nil {
		m.groups = backing[n+1:]
		a := c.Attr("agrp")
		for i, g := range q.Groups {
			m.groups[i] = tx.db.Tag(c, schema.Field{Attr: a, Value: schema.String(g)})
		}
	}
	return m, prefixes
}

// releaseCompiled gives back the transaction's buffers a compiled query
// m holds; m must not be used afterwards.
func (tx *Tx) releaseCompiled(m *matcher) {
	if m.owned {
		tx.compiledBusy = false
	}
}

// Matches reports whether r satisfies q (decided from tags alone).
func (tx *Tx) Matches(q Query, r *Record) bool {
	if r.hdrLen == 0 {
		return false
	}
	m, _ := tx.compile(q)
	defer tx.releaseCompiled(&m)
	return m.match(r)
}

// Has reports whether r's attribute f.Attr has the value f.Value (decided
// from tags alone).
func (tx *Tx) Has(r *Record, f schema.Field) bool {
	return r.hdrLen > 0 && r.HasTag(tx.db.Tag(r.Class, f))
}

func hasAny(r *Record, tags []protect.Tag) bool {
	for _, t := range tags {
		if r.HasTag(t) {
			return true
		}
	}
	return false
}

// intersect walks the rows present under every prefix in the index, in
// ascending order (a leapfrog join: each cursor seeks to the largest row
// seen so far), so the cost follows the shortest posting list.
func (tx *Tx) intersect(prefixes [][]byte, from uint64, fn func(row uint64) (bool, error)) error {
	// The transaction's seek buffer: no cursor keeps the key it was given,
	// and each use fills it anew, so a nested search may share it.
	seekKey := &tx.seekBuf
	if len(prefixes) == 1 {
		// One posting list: seek once, then step along it.
		cur := tx.postingCursor(prefixes[0])
		defer tx.releaseCursor(cur)
		copy(seekKey[:], prefixes[0])
		binary.BigEndian.PutUint64(seekKey[tagSize:], from)
		for k, _ := cur.Seek(seekKey[:]); len(k) == tagSize+8 && bytes.HasPrefix(k, prefixes[0]); k, _ = cur.Next() {
			more, err := fn(binary.BigEndian.Uint64(k[tagSize:]))
			if err != nil || !more {
				return err
			}
		}
		return nil
	}
	curs := make([]seeker, len(prefixes))
	for i := range prefixes {
		curs[i] = tx.postingCursor(prefixes[i])
	}
	defer func() {
		for _, c := range curs {
			tx.releaseCursor(c)
		}
	}()
	target := from
	for {
		agreed := 0
		for i := 0; agreed < len(prefixes); i = (i + 1) % len(prefixes) {
			copy(seekKey[:], prefixes[i])
			binary.BigEndian.PutUint64(seekKey[tagSize:], target)
			k, _ := curs[i].Seek(seekKey[:])
			if len(k) != tagSize+8 || !bytes.HasPrefix(k, prefixes[i]) {
				return nil
			}
			row := binary.BigEndian.Uint64(k[tagSize:])
			if row == target {
				agreed++
				continue
			}
			target = row
			agreed = 1
		}
		more, err := fn(target)
		if err != nil || !more {
			return err
		}
		if target == ^uint64(0) {
			return nil
		}
		target++
	}
}

// seeker is what intersect steps through a posting list with: a bbolt
// cursor or, in a read transaction, a cursor over the map.
type seeker interface {
	Seek(k []byte) ([]byte, []byte)
	Next() ([]byte, []byte)
}

// indexCursor returns a cursor over the index, to give back with
// releaseCursor: the transaction's own map cursor when it is free (a
// nested search, from inside another's callback, gets a new one), a
// reused bbolt cursor in a write transaction.
func (tx *Tx) indexCursor() seeker {
	if m, root, ok := tx.direct(refIndex); ok {
		c := &tx.mc
		if tx.mcBusy {
			c = new(mcursor)
		} else {
			tx.mcBusy = true
		}
		c.reset(tx, m, refIndex, root)
		return c
	}
	return tx.cursor(tx.index())
}

// releaseCursor gives back a cursor from indexCursor.
func (tx *Tx) releaseCursor(c seeker) {
	switch c := c.(type) {
	case *mcursor:
		if c == &tx.mc {
			tx.mcBusy = false
		}
	case *bbolt.Cursor:
		tx.release(c)
	case *logSeeker:
		tx.releaseCursor(c.main)
		if c == &tx.ls {
			tx.lsBusy = false
		}
	}
}

// ByRef returns the item of class c whose item ID is id, or nil.
func (tx *Tx) ByRef(c *schema.Class, id [16]byte) (*Record, error) {
	if err := stored(c); err != nil {
		return nil, err
	}
	row := tx.db.ix.RowOf(id)
	raw := tx.getRow(c, row)
	if raw == nil {
		return nil, nil
	}
	r, err := parseRecord(c, row, tx.own(raw))
	if err != nil {
		return nil, nil
	}
	if !protectEqual(r.RefID[:], id[:]) {
		return nil, nil
	}
	return r, nil
}

// ByPrimaryKey returns the item of class c whose primary key equals that
// of fields (missing attributes count as their defaults), or nil.
// Tombstones are returned too: the caller decides whether to replace one.
// Candidates come from the lookup-key posting; the shared primary-key
// attributes (agrp, sync, ...) are checked against their tags.
func (tx *Tx) ByPrimaryKey(c *schema.Class, fields schema.Fields) (*Record, error) {
	return tx.byKeyTags(c, tx.db.lookupTag(c, fields), tx.db.sharedKeyTags(c, fields))
}

// Holder returns the item holding the primary key of a sealed item, or
// nil: ByPrimaryKey of s's fields, with the tags Prepare computed outside
// the writer.
func (tx *Tx) Holder(s *Sealed) (*Record, error) {
	return tx.byKeyTags(s.Class, s.lookup, s.shared)
}

// byKeyTags returns the item of class c that owns the lookup posting lk and
// carries the shared primary-key tags, or nil (see ByPrimaryKey).
func (tx *Tx) byKeyTags(c *schema.Class, lk protect.Tag, shared []protect.Tag) (*Record, error) {
	items, err := tx.items(c)
	if err != nil {
		return nil, err
	}
	cur := tx.postingCursor(lk[:])
	defer tx.releaseCursor(cur)
	var seek [tagSize + 8]byte
	copy(seek[:], lk[:])
	for k, _ := cur.Seek(seek[:]); k != nil && bytes.HasPrefix(k, lk[:]); k, _ = cur.Next() {
		if len(k) != tagSize+8 {
			continue
		}
		row := binary.BigEndian.Uint64(k[tagSize:])
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], row)
		raw := tx.get(items, key[:])
		if raw == nil {
			continue
		}
		// A damaged item holding this key: the device replaces corrupt
		// rows on conflict, so report it as such (without its bytes when
		// even its size is damaged: see fitsFile).
		if tx.value(raw) == nil {
			return &Record{Class: c, Row: row}, nil
		}
		r, err := parseRecord(c, row, tx.own(raw))
		if err != nil {
			return &Record{Class: c, Row: row, raw: bytes.Clone(raw)}, nil
		}
		same := r.hasPosted(lk) // the index alone is not believed
		for _, t := range shared {
			same = same && r.HasTag(t)
		}
		if same {
			return r, nil
		}
	}
	return nil, nil
}

// lookupTag is the tag of an item's lookup key (see schema's LookupKey):
// its class's own primary-key values, missing ones as their defaults.
func (db *DB) lookupTag(c *schema.Class, fields schema.Fields) protect.Tag {
	var arr [256]byte
	return db.ix.Tag(c.Code, "!lookup", fields.AppendKey(arr[:0], c.LookupKey()))
}

// JoinTag is the tag shared by a certificate's pkhh and a key's klbl of
// the same value: the posting that pairs them into an identity.
func (db *DB) JoinTag(value []byte) protect.Tag {
	return db.ix.Tag("idnt", "!pair", value)
}

// Paired calls fn for every record of class c posted under the join tag
// of value, in row order.
func (tx *Tx) Paired(c *schema.Class, value []byte, fn func(*Record) (bool, error)) error {
	return tx.posted(c, tx.db.JoinTag(value), nil, fn)
}

// PairedWith calls fn for every record of class c that owns one of r's
// postings: for a certificate and class keys, its identity partners (the
// join tag is the only posting two classes can share; the others are
// keyed by class). It reads headers only, so it works locked.
func (tx *Tx) PairedWith(r *Record, c *schema.Class, fn func(*Record) (bool, error)) error {
	if !r.Readable() {
		return nil
	}
	seen := map[uint64]bool{}
	posted := r.postedTags()
	for i := 0; i < r.nposted; i++ {
		var t protect.Tag
		copy(t[:], posted[i*tagSize:])
		stop := false
		err := tx.posted(c, t, seen, func(p *Record) (bool, error) {
			more, err := fn(p)
			stop = !more
			return more, err
		})
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// posted calls fn for every record of class c whose header lists the
// posting t, skipping rows in seen (and adding to it when not nil).
func (tx *Tx) posted(c *schema.Class, t protect.Tag, seen map[uint64]bool, fn func(*Record) (bool, error)) error {
	if err := stored(c); err != nil {
		return err
	}
	return tx.intersect([][]byte{t[:]}, 0, func(row uint64) (bool, error) {
		if seen[row] {
			return true, nil
		}
		raw := tx.getRow(c, row)
		if raw == nil {
			return true, nil
		}
		r, err := parseRecord(c, row, tx.own(raw))
		if err != nil || !r.hasPosted(t) {
			return true, nil
		}
		if seen != nil {
			seen[row] = true
		}
		return fn(r)
	})
}

// Parts says which sealed parts of a record to decrypt.
type Parts uint8

// The parts.
const (
	PartAttrs  Parts = 1 << iota // the attributes
	PartSecret                   // v_Data and the other secrets
)

// Open decrypts a record's attributes, and its secret when withSecret is
// set. See Read.
func (tx *Tx) Open(r *Record, withSecret bool) (attrs, secret schema.Fields, err error) {
	parts := PartAttrs
	if withSecret {
		parts |= PartSecret
	}
	return tx.Read(r, parts)
}

// Read decrypts the parts of a record asked for. It fails with
// InteractionNotAllowed (-25308) when the record's class key is not in
// memory and Decode (-26275) when any check fails: the version table says
// the record is stale, a sealed part does not authenticate, or the
// decrypted pdmn disagrees with the key that wrapped the item. Every part
// is bound to the header (key ID, version, tags), so reading only the
// secret still authenticates the item's identity and tags.
func (tx *Tx) Read(r *Record, parts Parts) (attrs, secret schema.Fields, err error) {
	if r.raw == nil || r.hdrLen == 0 {
		return nil, nil, status.New(status.Decode, "item %d is damaged", r.Row)
	}
	if tx.currentVersion(r.Row) != r.Version {
		return nil, nil, status.New(status.Decode, "item %d is stale or damaged (version check failed)", r.Row)
	}
	buf := tx.aadBuf[:0] // the transaction's: the AEAD interface would move a local one to the heap
	a := aad(buf[:0], partKey, &tx.db.storeID, r.Class.Code, r.Row, r.header())
	key, err := tx.db.kb.UnwrapItemKey(r.KeyID, r.wrapped(), a)
	switch {
	case errors.Is(err, protect.ErrLocked):
		return nil, nil, status.New(status.InteractionNotAllowed, "the item's class key is not available in this lock state")
	case err != nil:
		return nil, nil, status.New(status.Decode, "item %d failed authentication", r.Row)
	}
	defer key.Wipe()
	if parts&PartAttrs != 0 {
		a = aad(buf[:0], partAttrs, &tx.db.storeID, r.Class.Code, r.Row, r.header())
		pt, err := protect.OpenBlob(nil, &key, a, r.sealedAttrs())
		if err != nil {
			return nil, nil, status.New(status.Decode, "item %d failed authentication", r.Row)
		}
		attrs, err = decodeFields(r.Class, pt)
		clear(pt) // the values are copies
		if err != nil {
			return nil, nil, status.New(status.Decode, "item %d attributes do not decode", r.Row)
		}
		cls, ok := tx.db.kb.ClassOf(r.KeyID)
		if pdmn, _ := attrs.Get("pdmn"); !ok || pdmn.Str != cls.Code() {
			return nil, nil, status.New(status.Decode, "item %d protection class does not match its key", r.Row)
		}
	}
	if parts&PartSecret != 0 {
		a = aad(buf[:0], partSecret, &tx.db.storeID, r.Class.Code, r.Row, r.header())
		// The secret is opened into a buffer of its own, which the
		// decoded values then share: they are the caller's from here on,
		// so there is no copy to make and no plaintext left behind.
		sealed := r.sealedSecret()
		pt, err := protect.OpenBlob(make([]byte, 0, max(0, len(sealed)-protect.BlobOverhead)), &key, a, sealed)
		if err != nil {
			return nil, nil, status.New(status.Decode, "item %d secret failed authentication", r.Row)
		}
		secret, err = decodeFieldsIn(r.Class, pt, true)
		if err != nil {
			clear(pt)
			return nil, nil, status.New(status.Decode, "item %d secret does not decode", r.Row)
		}
	}
	return attrs, secret, nil
}

// Available reports whether r's class key is in memory.
func (tx *Tx) Available(r *Record) bool { return tx.db.kb.Available(r.KeyID) }

// SamePrimaryKey reports whether r has the primary key that fields give
// (missing attributes count as their defaults), decided from tags: what
// an Add of fields would collide with.
func (tx *Tx) SamePrimaryKey(r *Record, fields schema.Fields) bool {
	if !r.Readable() {
		return false
	}
	c := r.Class
	if !r.hasPosted(tx.db.lookupTag(c, fields)) {
		return false
	}
	for _, t := range tx.db.sharedKeyTags(c, fields) {
		if !r.HasTag(t) {
			return false
		}
	}
	return true
}

// sharedKeyTags returns the tags of the primary-key attributes outside
// the lookup key (agrp, sync, ...), missing ones as their defaults: with
// the lookup posting, they decide whether two items share a primary key.
func (db *DB) sharedKeyTags(c *schema.Class, fields schema.Fields) []protect.Tag {
	var out []protect.Tag
	for _, a := range c.PrimaryKey() {
		if slices.Contains(c.LookupKey(), a) {
			continue
		}
		v, ok := fields.Get(a.Code)
		if !ok {
			v, _ = a.Default()
		}
		out = append(out, db.Tag(c, schema.Field{Attr: a, Value: v}))
	}
	return out
}
