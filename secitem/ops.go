package secitem

import (
	"crypto/x509"
	"strings"
	"time"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/query"
	"github.com/secitemdb/secitemdb/schema"
)

// The four operations' names, as errors (Error.Op) and traces give them
// and as ExplainOperation takes them.
const (
	OpAdd          = "SecItemAdd"
	OpCopyMatching = "SecItemCopyMatching"
	OpUpdate       = "SecItemUpdate"
	OpDelete       = "SecItemDelete"
)

// parse checks a dictionary (with any v_Ref already expanded) for op and
// applies the caller's access groups.
func (c *Client) parse(op query.Op, d Dict) (*query.Plan, error) {
	if len(c.groups) == 0 {
		return nil, status.New(status.MissingEntitlement, "the caller has no access groups")
	}
	p, err := query.Parse(op, c.db.flavor, d)
	if err != nil {
		return nil, err
	}
	if err := p.ResolveAccess(c.groups); err != nil {
		return nil, err
	}
	return p, nil
}

// Add adds an item (SecItemAdd). attrs holds the class, the attributes and
// usually v_Data, or a v_Ref (a certificate, key or identity) from which
// the attributes are derived; return keys ask for the new item's data,
// attributes, ref or persistent reference. The result shapes are those of
// CopyMatching with a limit of one.
//
// cdat and mdat are set to now, missing attributes get their defaults, pdmn
// defaults to ak (dk for certificates) and agrp to the caller's first
// access group. An item whose primary key is already taken fails with
// ErrDuplicateItem; while the item's class key is unavailable Add fails
// with ErrInteractionNotAllowed, even for a duplicate. Adding an identity
// adds whichever of its certificate and private key are missing.
func (c *Client) Add(attrs Dict) (result any, err error) {
	tr := c.db.startTrace(OpAdd, attrs)
	defer func() { tr.end(result, err) }()
	leave, err := c.db.enter()
	if err != nil {
		return nil, wrapErr(OpAdd, err)
	}
	defer leave()
	result, err = c.add(attrs)
	return result, wrapErr(OpAdd, err)
}

func (c *Client) add(attrs Dict) (any, error) {
	if id, ok := attrs[ValueRef].(*identity.Identity); ok {
		return c.addIdentity(attrs, id)
	}
	d, err := expandAddRef(attrs)
	if err != nil {
		return nil, err
	}
	p, err := c.parse(query.Add, d)
	if err != nil {
		return nil, err
	}
	if p.Class.IsIdentity() {
		return nil, status.New(status.Param, "an identity is added with v_Ref holding an *identity.Identity")
	}
	if err := p.ApplyAddDefaults(c.db.now()); err != nil {
		return nil, err
	}
	if err := checkSyncable(p.Fields); err != nil {
		return nil, err
	}
	p.Fields = withUUID(p.Class, p.Fields)
	// Seal outside the transaction, so concurrent adds encrypt in
	// parallel and share only the commit.
	sealed, err := c.db.st.Prepare(p.Class, p.Fields, p.Secret)
	if err != nil {
		return nil, err
	}
	var item query.Item
	err = c.db.st.Write(func(tx *store.Tx) error {
		var err error
		item, err = c.db.insertSealed(tx, sealed, p.Secret)
		return err
	})
	if err != nil {
		return nil, err
	}
	if p.Return.Has(query.ReturnRef) {
		item.Ref = refOrObject(attrs[ValueRef], c.makeRef(p.Class, item.Attrs, item.Secret, item.PersistentRef))
	}
	res := query.Shape[Dict](p, []query.Item{item})
	// The item's attributes are the sealed list, a copy (store.Prepare),
	// and its secret was never in the plan's own buffer: nothing returned
	// shares the plan.
	p.Release()
	return res, nil
}

// refOrObject prefers the caller's own object as an Add's returned ref.
func refOrObject(given, built any) any {
	if given != nil {
		return given
	}
	return built
}

// insert stores a new item inside a transaction unless its primary key is
// taken by a live item; a tombstone or a damaged item holding the key is
// replaced, and the new item takes over its row and persistent reference.
func (db *DB) insert(tx *store.Tx, c *schema.Class, fields, secret schema.Fields) (query.Item, error) {
	if err := tx.CanWrite(mustPdmn(fields)); err != nil {
		return query.Item{}, err
	}
	sealed, err := db.st.Prepare(c, fields, secret)
	if err != nil {
		return query.Item{}, err
	}
	return db.insertSealed(tx, sealed, secret)
}

func mustPdmn(fields schema.Fields) string {
	v, _ := fields.Get(AttrAccessible)
	return v.Str
}

// insertSealed stores a prepared item unless its primary key is taken by
// a live item; a tombstone or damaged item holding the key is replaced
// (resealed at its row).
func (db *DB) insertSealed(tx *store.Tx, s *store.Sealed, secret schema.Fields) (query.Item, error) {
	c := s.Class
	old, err := tx.Holder(s)
	if err != nil {
		return query.Item{}, err
	}
	var rec *store.Record
	stored := s.Fields
	switch {
	case old == nil:
		rec, err = tx.InsertSealed(s)
	case replaceable(tx, old):
		rec, stored, err = tx.Rewrite(old, s.Fields, secret)
	default:
		return query.Item{}, status.New(status.DuplicateItem, "an item of class %q with the same primary key (%s) already exists", c.Code, pkNames(c))
	}
	if err != nil {
		return query.Item{}, err
	}
	return query.Item{Class: c.Code, Attrs: stored, Secret: secret, PersistentRef: rec.PersistentRef()}, nil
}

// replaceable reports whether an item holding a primary key may be
// replaced instead of causing ErrDuplicateItem: a tombstone, or a
// corrupted item (one that fails authentication), as on the device.
func replaceable(tx *store.Tx, r *store.Record) bool {
	if !r.Readable() {
		return true
	}
	if tx.Has(r, schema.Field{Attr: r.Class.Attr(AttrTombstone), Value: schema.Number(1)}) {
		return true
	}
	// Opened only to see whether it authenticates: the secret goes at once.
	_, secret, err := tx.Open(r, true)
	for _, f := range secret {
		clear(f.Value.Data)
	}
	return status.Of(err) == status.Decode
}

func pkNames(c *schema.Class) string {
	var names []string
	for _, a := range c.PrimaryKey() {
		names = append(names, a.Code)
	}
	return strings.Join(names, ", ")
}

// CopyMatching searches for items (SecItemCopyMatching). The query holds
// the class and equality filters on attributes (or a v_Ref standing for
// them); return keys choose what comes back (see the package documentation
// for the shapes); m_Limit defaults to one. Nothing matching is
// ErrItemNotFound; a match whose class key is unavailable is
// ErrInteractionNotAllowed. Items that fail authentication are skipped, as
// on the device.
func (c *Client) CopyMatching(q Dict) (result any, err error) {
	tr := c.db.startTrace(OpCopyMatching, q)
	var notes []string
	defer func() { tr.end(result, err, notes...) }()
	leave, err := c.db.enter()
	if err != nil {
		return nil, wrapErr(OpCopyMatching, err)
	}
	defer leave()
	result, notes, err = c.copyMatching(q)
	return result, wrapErr(OpCopyMatching, err)
}

func (c *Client) copyMatching(q Dict) (any, []string, error) {
	d, err := expandQueryRef(q)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.parse(query.Search, d)
	if err != nil {
		return nil, nil, err
	}
	defer p.Release() // nothing below keeps a part of the plan
	var notes []string
	if len(p.Match.IgnoredByThis) > 0 {
		notes = append(notes, "ignored: "+strings.Join(p.Match.IgnoredByThis, ", "))
	}
	var items []query.Item
	err = c.db.st.View(func(tx *store.Tx) error {
		var err error
		if p.Class.IsIdentity() {
			items, err = c.searchIdentities(tx, p)
		} else {
			items, err = c.search(tx, p)
		}
		return err
	})
	if err != nil {
		return nil, notes, err
	}
	if len(items) == 0 {
		return nil, notes, status.New(status.ItemNotFound, "no item matches the query")
	}
	return query.Shape[Dict](p, items), notes, nil
}

// read opens a candidate for a search: ok is false for an item to skip
// (one that fails authentication, or, in the file-based flavor, one whose
// class key is unavailable); a locked item is ErrInteractionNotAllowed.
func (db *DB) read(tx *store.Tx, r *store.Record, parts store.Parts) (attrs, secret schema.Fields, ok bool, err error) {
	attrs, secret, err = tx.Read(r, parts)
	switch status.Of(err) {
	case status.OK:
		return attrs, secret, true, nil
	case status.Decode:
		return nil, nil, false, nil // tampered or stale: skipped, as on the device
	case status.InteractionNotAllowed:
		if db.flavor == query.FileBased {
			return nil, nil, false, nil // the shim prefers "not found"
		}
	}
	return nil, nil, false, err
}

// search returns the items a search plan finds, decrypted as far as the
// return keys need, up to the plan's limit.
func (c *Client) search(tx *store.Tx, p *query.Plan) ([]query.Item, error) {
	parts := partsFor(p)
	var out []query.Item
	err := c.db.candidates(tx, p, func(r *store.Record) (bool, error) {
		attrs, secret, ok, err := c.db.read(tx, r, parts)
		if !ok {
			return err == nil, err
		}
		if !c.residualMatch(tx, p, attrs, secret) {
			return true, nil
		}
		it := query.Item{Class: r.Class.Code, Attrs: attrs, Secret: secret}
		if p.Return.Has(query.ReturnPersistentRef) || p.Return.Has(query.ReturnRef) {
			it.PersistentRef = r.PersistentRef()
		}
		if p.Return.Has(query.ReturnRef) {
			it.Ref = c.makeRef(r.Class, attrs, secret, it.PersistentRef)
		}
		out = append(out, it)
		return p.Limit == 0 || len(out) < p.Limit, nil
	})
	return out, err
}

// partsFor says which sealed parts a search must decrypt: the secret for
// r_Data, r_Ref (objects are rebuilt from their data) and certificate
// match keys; the attributes for everything else. A lone r_Data reads the
// secret only, so the common "get the password" query costs one
// decryption.
func partsFor(p *query.Plan) store.Parts {
	var parts store.Parts
	if wantsSecret(p) {
		parts |= store.PartSecret
	}
	attrsOnlyForData := p.Return == query.ReturnData && p.Match.Host == nil && !certMatchKeys(p)
	if !attrsOnlyForData {
		parts |= store.PartAttrs
	}
	return parts
}

func certMatchKeys(p *query.Plan) bool {
	return p.Match.Issuers != nil || p.Match.ValidOnDate != nil || p.Match.Email != nil
}

// candidates calls fn for every item matching the plan's class, filters
// and access groups, decided from tags alone, in creation order.
func (db *DB) candidates(tx *store.Tx, p *query.Plan, fn func(*store.Record) (bool, error)) error {
	q := store.Query{Class: p.Class, Filters: p.Fields, Implicit: p.Implicit, Groups: p.Groups}
	if p.PersistentRef == nil {
		return tx.Find(q, fn)
	}
	r, err := tx.ByRef(p.Class, p.PersistentRef.ID)
	if err != nil || r == nil || !tx.Matches(q, r) {
		return err
	}
	_, err = fn(r)
	return err
}

// residualMatch applies the match keys that need decrypted attributes or
// the parsed certificate.
func (c *Client) residualMatch(tx *store.Tx, p *query.Plan, attrs, secret schema.Fields) bool {
	if h := p.Match.Host; h != nil {
		v, _ := attrs.Get(AttrServer)
		s := string(v.Bytes())
		if s != *h && !strings.HasSuffix(s, "."+*h) {
			return false
		}
	}
	m := p.Match
	if m.Issuers == nil && m.ValidOnDate == nil && m.Email == nil {
		return true
	}
	data, _ := secret.Get(ValueData)
	cert, err := x509.ParseCertificate(data.Data)
	if err != nil {
		return false
	}
	if m.ValidOnDate != nil {
		t := *m.ValidOnDate
		if t.IsZero() {
			t = c.db.now()
		}
		if !identity.ValidOn(cert, t) {
			return false
		}
	}
	if m.Email != nil && !identity.HasEmail(cert, *m.Email) {
		return false
	}
	if m.Issuers != nil {
		issr, _ := attrs.Get(AttrIssuer)
		return c.issuerChainMatches(tx, p, m.Issuers, issr.Data)
	}
	return true
}

// maxIssuerDepth bounds the issuer-chain walk of m_Issuers, as on the device.
const maxIssuerDepth = 10

// issuerChainMatches reports whether issuer, or the issuer of the
// certificate whose subject it is (and so on up to ten levels, through the
// certificates the caller can see), is one of the wanted issuers.
func (c *Client) issuerChainMatches(tx *store.Tx, p *query.Plan, wanted [][]byte, issuer []byte) bool {
	set := map[string]bool{}
	for _, w := range wanted {
		if n, err := identity.NormalizeName(w); err == nil {
			set[string(n)] = true
		}
	}
	seen := map[string]bool{}
	for depth := 0; depth <= maxIssuerDepth; depth++ {
		if set[string(issuer)] {
			return true
		}
		if seen[string(issuer)] {
			return false
		}
		seen[string(issuer)] = true
		next, ok := c.issuerOf(tx, p, issuer)
		if !ok {
			return false
		}
		issuer = next
	}
	return false
}

// issuerOf returns the issuer of a certificate whose subject is subject.
func (c *Client) issuerOf(tx *store.Tx, p *query.Plan, subject []byte) ([]byte, bool) {
	cls := schema.Certificate
	q := store.Query{Class: cls, Filters: schema.Fields{{Attr: cls.Attr(AttrSubject), Value: schema.Data(subject)}}, Groups: p.Groups}
	var out []byte
	found := false
	tx.Find(q, func(r *store.Record) (bool, error) {
		attrs, _, err := tx.Open(r, false)
		if err != nil {
			return true, nil
		}
		v, _ := attrs.Get(AttrIssuer)
		out, found = v.Data, true
		return false, nil
	})
	return out, found
}

// Update changes every item matching query (SecItemUpdate), all in one
// transaction: either every match is updated or none is. attrsToUpdate
// holds attributes and v_Data; its keys must all be attributes of the
// class. mdat is set to now (strictly later than before); the persistent
// reference stays. A change that would give an item the primary key of
// another fails with ErrDuplicateItem; no match is ErrItemNotFound; add-only
// attributes (accc, tkid, musr, ggrp) are ErrParam. An identity update is
// split into a certificate update and a key update.
func (c *Client) Update(q, attrsToUpdate Dict) (err error) {
	tr := c.db.startTrace(OpUpdate, q, attrsToUpdate)
	defer func() { tr.end(nil, err) }()
	leave, err := c.db.enter()
	if err != nil {
		return wrapErr(OpUpdate, err)
	}
	defer leave()
	return wrapErr(OpUpdate, c.update(q, attrsToUpdate))
}

func (c *Client) update(q, attrsToUpdate Dict) error {
	if isIdentityQuery(q) {
		return c.updateIdentity(q, attrsToUpdate)
	}
	d, err := expandQueryRef(q)
	if err != nil {
		return err
	}
	p, err := c.parse(query.Update, d)
	if err != nil {
		return err
	}
	if p.Class.IsIdentity() { // class or reference given as a named type
		return c.updateIdentity(q, attrsToUpdate)
	}
	ch, err := query.ParseChanges(p.Class, attrsToUpdate)
	if err != nil {
		return err
	}
	if g, ok := ch.Fields.Get(AttrAccessGroup); ok {
		if err := query.CheckNewGroup(c.groups, g.Str); err != nil {
			return err
		}
	}
	if pd, ok := ch.Fields.Get(AttrAccessible); ok {
		if err := c.db.st.CheckProtection(pd.Str); err != nil {
			return err
		}
	}
	now := c.db.now()
	return c.db.st.Write(func(tx *store.Tx) error {
		var matches []*store.Record
		if err := c.db.candidates(tx, p, func(r *store.Record) (bool, error) {
			matches = append(matches, r)
			return true, nil
		}); err != nil {
			return err
		}
		updated := 0
		for _, r := range matches {
			attrs, secret, err := tx.Open(r, true)
			switch status.Of(err) {
			case status.OK:
			case status.Decode:
				continue
			default:
				return err
			}
			fields, secret := applyChanges(r.Class, attrs, secret, ch, now)
			if err := checkSyncable(fields); err != nil {
				return err
			}
			if err := c.db.checkCollision(tx, r, fields); err != nil {
				return err
			}
			// Moving a synchronizable item to a new primary key leaves a
			// tombstone for the old one (or as u_Tomb says).
			moved := !samePrimaryKey(r.Class, attrs, fields)
			tomb := moved && wantsTombstone(tx, p, r)
			if _, _, err := tx.Rewrite(r, fields, secret); err != nil {
				return err
			}
			if tomb {
				if _, err := c.db.insert(tx, r.Class, tombstoneOf(r.Class, attrs, now), nil); err != nil {
					return err
				}
			}
			updated++
		}
		if updated == 0 {
			return status.New(status.ItemNotFound, "no item matches the query")
		}
		return nil
	})
}

// applyChanges returns an item's attributes and secret with the changes
// applied and mdat moved to now, or 1 ms past the old mdat when the clock
// has not moved on.
func applyChanges(c *schema.Class, attrs, secret schema.Fields, ch *query.Changes, now time.Time) (schema.Fields, schema.Fields) {
	fields := attrs.Clone()
	for _, f := range ch.Fields {
		fields = fields.Set(c.Attr(f.Attr.Code), f.Value)
	}
	// An access control names its protection class; when pdmn moves, it
	// moves with it, so the two never disagree.
	if pdmn, ok := ch.Fields.Get(AttrAccessible); ok {
		if _, has := fields.Get(AttrAccessControl); has {
			fields = fields.Set(c.Attr(AttrAccessControl), pdmn)
		}
	}
	mdat := schema.Date(now)
	if old, ok := attrs.Get(AttrModificationDate); ok && !mdat.Time.After(old.Time) {
		mdat = schema.Date(old.Time.Add(time.Millisecond))
	}
	fields = fields.Set(c.Attr(AttrModificationDate), mdat)
	secret = secret.Clone()
	for _, f := range ch.Secret {
		secret = secret.Set(c.Attr(f.Attr.Code), f.Value)
	}
	return fields, secret
}

// checkCollision fails with ErrDuplicateItem when fields would give r the
// primary key of another live item; a tombstone or damaged item in the way
// is removed.
func (db *DB) checkCollision(tx *store.Tx, r *store.Record, fields schema.Fields) error {
	other, err := tx.ByPrimaryKey(r.Class, fields)
	if err != nil || other == nil || other.Row == r.Row {
		return err
	}
	if replaceable(tx, other) {
		return tx.Delete(other)
	}
	return status.New(status.DuplicateItem, "the update would give an item the primary key (%s) of another item", pkNames(r.Class))
}

// Delete removes every item matching query (SecItemDelete). It needs no
// class key, so it succeeds while the device is locked: a read that fails
// with ErrInteractionNotAllowed followed by a "reset" Delete destroys the
// user's credential (see the package documentation). Nothing matching is
// ErrItemNotFound. In the file-based flavor a Delete without m_Limit
// removes one item. Deleting an identity deletes its certificate, and its
// private key only when no other certificate pairs with that key.
func (c *Client) Delete(q Dict) (err error) {
	tr := c.db.startTrace(OpDelete, q)
	defer func() { tr.end(nil, err) }()
	leave, err := c.db.enter()
	if err != nil {
		return wrapErr(OpDelete, err)
	}
	defer leave()
	return wrapErr(OpDelete, c.del(q))
}

func (c *Client) del(q Dict) error {
	if isIdentityQuery(q) {
		return c.deleteIdentity(q)
	}
	d, err := expandQueryRef(q)
	if err != nil {
		return err
	}
	p, err := c.parse(query.Delete, d)
	if err != nil {
		return err
	}
	if p.Class.IsIdentity() { // class or reference given as a named type
		return c.deleteIdentity(q)
	}
	return c.db.st.Write(func(tx *store.Tx) error {
		var victims []*store.Record
		if err := c.db.candidates(tx, p, func(r *store.Record) (bool, error) {
			victims = append(victims, r)
			return p.Limit == 0 || len(victims) < p.Limit, nil
		}); err != nil {
			return err
		}
		if len(victims) == 0 {
			return status.New(status.ItemNotFound, "no item matches the query")
		}
		for _, r := range victims {
			if err := c.db.deleteOne(tx, p, r); err != nil {
				return err
			}
		}
		return nil
	})
}
