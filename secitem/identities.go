package secitem

import (
	"bytes"
	"crypto"
	"crypto/x509"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/query"
	"github.com/secitemdb/secitemdb/schema"
)

// An identity is not stored: it is the join of a certificate and a private
// key whose klbl equals the certificate's pkhh (apple-reference.md f.1).

// identityCertColumns are the attributes an identity query matches
// against the certificate; every other attribute is matched against the
// key. labl, issr, slnr, skid and tkid are the certificate's columns of
// the device's join (the certificate's values take precedence); subj,
// pkhh, ctyp and cenc exist only on the certificate, and secitemdb matches
// them there too (the device's SQL fails on them; see docs/semantics.md).
var identityCertColumns = map[string]bool{
	AttrLabel: true, AttrIssuer: true, AttrSerialNumber: true, AttrSubjectKeyID: true, AttrTokenID: true,
	AttrSubject: true, AttrPublicKeyHash: true, AttrCertificateType: true, AttrCertificateEncoding: true,
}

// isIdentityQuery reports whether a query is about identities: class
// idnt, an identity ref, or an identity persistent reference.
func isIdentityQuery(q Dict) bool {
	if s, _ := q[Class].(string); s == ClassIdentity {
		return true
	}
	if _, ok := q[ValueRef].(*identity.Identity); ok {
		return true
	}
	if b, ok := q[ValuePersistentRef].([]byte); ok && bytes.HasPrefix(b, []byte(ClassIdentity)) {
		return true
	}
	return false
}

// identityQueries splits an identity plan into a certificate query and a
// private-key query.
func identityQueries(p *query.Plan) (certQ, keyQ store.Query) {
	cert, key := schema.Certificate, schema.Key
	certQ = store.Query{Class: cert, Groups: p.Groups}
	keyQ = store.Query{Class: key, Groups: p.Groups}
	for _, f := range p.Fields {
		if identityCertColumns[f.Attr.Code] {
			certQ.Filters = certQ.Filters.Set(cert.Attr(f.Attr.Code), f.Value)
		} else if a := key.Attr(f.Attr.Code); a != nil {
			keyQ.Filters = keyQ.Filters.Set(a, f.Value)
		}
	}
	for _, f := range p.Implicit {
		keyQ.Filters = keyQ.Filters.Set(key.Attr(f.Attr.Code), f.Value)
		certQ.Filters = certQ.Filters.Set(cert.Attr(f.Attr.Code), f.Value)
	}
	keyQ.Filters = keyQ.Filters.Set(key.Attr(AttrKeyClass), schema.Number(identity.KeyClassPrivate))
	return certQ, keyQ
}

// searchIdentities finds the identities of a plan: for each certificate
// that matches, each private key with klbl equal to its pkhh that matches,
// in certificate then key creation order.
func (c *Client) searchIdentities(tx *store.Tx, p *query.Plan) ([]query.Item, error) {
	certQ, keyQ := identityQueries(p)
	certParts := store.PartAttrs
	if wantsSecret(p) {
		certParts |= store.PartSecret
	}
	keyParts := store.PartAttrs
	if p.Return.Has(query.ReturnData) || p.Return.Has(query.ReturnRef) {
		keyParts |= store.PartSecret
	}
	var out []query.Item
	visit := func(cr *store.Record) (bool, error) {
		cattrs, csecret, ok, err := c.db.read(tx, cr, certParts)
		if !ok {
			return err == nil, err
		}
		pkhh, ok := cattrs.Get(AttrPublicKeyHash)
		if !ok || !c.residualMatch(tx, p, cattrs, csecret) {
			return true, nil
		}
		more := true
		err = tx.Paired(schema.Key, pkhh.Data, func(kr *store.Record) (bool, error) {
			if !tx.Matches(keyQ, kr) {
				return true, nil
			}
			kattrs, ksecret, ok, err := c.db.read(tx, kr, keyParts)
			if !ok {
				return err == nil, err
			}
			if klbl, _ := kattrs.Get(AttrApplicationLabel); !bytes.Equal(klbl.Data, pkhh.Data) {
				return true, nil
			}
			it := query.Item{
				Class:         ClassIdentity,
				Attrs:         overlay(kattrs, cattrs),
				Secret:        ksecret,
				PersistentRef: identityRef(cr),
			}
			if p.Return.Has(query.ReturnRef) {
				it.Ref = c.identityObject(csecret, kattrs, ksecret, kr.PersistentRef())
			}
			out = append(out, it)
			more = p.Limit == 0 || len(out) < p.Limit
			return more, nil
		})
		return more, err
	}
	if p.PersistentRef != nil {
		r, err := tx.ByRef(schema.Certificate, p.PersistentRef.ID)
		if err != nil || r == nil || !tx.Matches(certQ, r) {
			return nil, err
		}
		_, err = visit(r)
		return out, err
	}
	return out, tx.Find(certQ, visit)
}

// identityRef is an identity's persistent reference: its certificate's,
// tagged idnt.
func identityRef(cert *store.Record) []byte {
	ref := cert.PersistentRef()
	copy(ref, ClassIdentity)
	return ref
}

func (c *Client) identityObject(certSecret, keyAttrs, keySecret schema.Fields, keyRef []byte) any {
	data, _ := certSecret.Get(ValueData)
	cert, err := x509.ParseCertificate(data.Data)
	if err != nil {
		return nil
	}
	key, ok := c.makeRef(schema.Key, keyAttrs, keySecret, keyRef).(crypto.Signer)
	if !ok {
		return nil
	}
	return &identity.Identity{Certificate: cert, PrivateKey: key}
}

// overlay returns base with every attribute of top added or replacing the
// attribute of the same code: the identity's attributes are its key's,
// overlaid with its certificate's.
func overlay(base, top schema.Fields) schema.Fields {
	out := base.Clone()
	for _, f := range top {
		replaced := false
		for i := range out {
			if out[i].Attr.Code == f.Attr.Code {
				out[i] = f
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, f)
		}
	}
	return out
}

// addIdentity adds an identity's two halves (apple-reference.md f.2): the
// certificate (a duplicate is tolerated), then the private key (a
// duplicate is tolerated unless the certificate was one too), in one
// transaction.
func (c *Client) addIdentity(d Dict, id *identity.Identity) (any, error) {
	if _, err := checkRefClass(d); err != nil {
		return nil, err
	}
	base := make(Dict, len(d))
	for k, v := range d {
		if k != ValueRef && k != Class {
			base[k] = v
		}
	}
	certAttrs, err := identity.CertificateAttributes(id.Certificate)
	if err != nil {
		return nil, status.New(status.InvalidItemRef, "the identity's certificate cannot be parsed: %v", err)
	}
	certAttrs[AttrLabel] = identity.SubjectSummary(id.Certificate)
	certPlan, err := c.parse(query.Add, merge(base, ClassCertificate, certAttrs))
	if err != nil {
		return nil, err
	}
	var keyPlan *query.Plan
	if _, token := id.PrivateKey.(*TokenKey); !token {
		keyAttrs, err := identity.KeyAttributes(id.PrivateKey)
		if err != nil {
			return nil, status.New(status.InvalidItemRef, "the identity's private key cannot be stored: %v", err)
		}
		keyDict := merge(base, ClassKey, keyAttrs)
		for _, k := range []string{ReturnData, ReturnAttributes, ReturnRef, ReturnPersistentRef} {
			delete(keyDict, k)
		}
		if keyPlan, err = c.parse(query.Add, keyDict); err != nil {
			return nil, err
		}
	}
	now := c.db.now()
	for _, p := range []*query.Plan{certPlan, keyPlan} {
		if p != nil {
			if err := p.ApplyAddDefaults(now); err != nil {
				return nil, err
			}
		}
	}
	var item query.Item
	err = c.db.st.Write(func(tx *store.Tx) error {
		ci, certErr := c.db.insert(tx, certPlan.Class, certPlan.Fields, certPlan.Secret)
		certDup := status.Of(certErr) == status.DuplicateItem
		if certErr != nil && !certDup {
			return certErr
		}
		var ki query.Item
		if keyPlan != nil {
			var keyErr error
			ki, keyErr = c.db.insert(tx, keyPlan.Class, keyPlan.Fields, keyPlan.Secret)
			switch {
			case status.Of(keyErr) == status.DuplicateItem && certDup:
				return status.New(status.DuplicateItem, "the identity's certificate and private key are both already in the keychain")
			case status.Of(keyErr) == status.DuplicateItem:
			case keyErr != nil:
				return keyErr
			}
		}
		if certDup {
			existing, err := tx.ByPrimaryKey(schema.Certificate, certPlan.Fields)
			if err != nil || existing == nil {
				return err
			}
			ci.PersistentRef = existing.PersistentRef()
			ci.Attrs, _, _ = tx.Open(existing, false)
		}
		item = query.Item{Class: ClassIdentity, Attrs: overlay(ki.Attrs, ci.Attrs), Secret: ki.Secret, Ref: id}
		item.PersistentRef = append([]byte(ClassIdentity), ci.PersistentRef[4:]...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	shape := &query.Plan{Op: query.Add, Flavor: c.db.flavor, Class: schema.Identity, Return: certPlan.Return}
	return query.Shape[Dict](shape, []query.Item{item}), nil
}

// deleteIdentity deletes identities (apple-reference.md f.3). By class and
// attributes: every matching certificate, then (if that succeeded) every
// matching key, as two deletes. By ref or persistent reference: the
// certificate, then its private key unless another certificate still
// pairs with it.
func (c *Client) deleteIdentity(q Dict) error {
	_, byRef := q[ValueRef].(*identity.Identity)
	_, byPref := q[ValuePersistentRef]
	if !byRef && !byPref {
		for _, class := range []string{ClassCertificate, ClassKey} {
			d := make(Dict, len(q))
			for k, v := range q {
				d[k] = v
			}
			d[Class] = class
			if err := c.del(d); err != nil {
				return err
			}
		}
		return nil
	}
	d, err := expandQueryRef(q)
	if err != nil {
		return err
	}
	p, err := c.parse(query.Delete, d)
	if err != nil {
		return err
	}
	certQ, keyQ := identityQueries(p)
	return c.db.st.Write(func(tx *store.Tx) error {
		var certs []*store.Record
		collect := func(r *store.Record) (bool, error) {
			certs = append(certs, r)
			return true, nil
		}
		if p.PersistentRef != nil {
			r, err := tx.ByRef(schema.Certificate, p.PersistentRef.ID)
			if err != nil {
				return err
			}
			if r != nil && tx.Matches(certQ, r) {
				certs = append(certs, r)
			}
		} else if err := tx.Find(certQ, collect); err != nil {
			return err
		}
		if len(certs) == 0 {
			return status.New(status.ItemNotFound, "no identity matches the query")
		}
		for _, cr := range certs {
			// The partners are found from the certificate's header (its
			// join posting), not its decrypted pkhh, so an identity can
			// be deleted while its class key is locked away.
			var keys []*store.Record
			if err := tx.PairedWith(cr, schema.Key, func(kr *store.Record) (bool, error) {
				if tx.Matches(keyQ, kr) {
					keys = append(keys, kr)
				}
				return true, nil
			}); err != nil {
				return err
			}
			if err := tx.Delete(cr); err != nil {
				return err
			}
			for _, kr := range keys {
				if c.stillPaired(tx, kr) {
					continue
				}
				if err := tx.Delete(kr); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// stillPaired reports whether a live certificate still pairs with the key
// record kr.
func (c *Client) stillPaired(tx *store.Tx, kr *store.Record) bool {
	found := false
	tomb := schema.Field{Attr: schema.Certificate.Attr(AttrTombstone), Value: schema.Number(1)}
	tx.PairedWith(kr, schema.Certificate, func(r *store.Record) (bool, error) {
		if tx.Has(r, tomb) {
			return true, nil
		}
		found = true
		return false, nil
	})
	return found
}

// updateIdentity splits an identity update (apple-reference.md c.7, f.3):
// by ref, the certificate's item then the key's; by class, every matching
// certificate then every matching key. An identity addressed only by its
// persistent reference cannot be updated (errSecInternal, as on the
// device).
func (c *Client) updateIdentity(q, attrs Dict) error {
	if id, ok := q[ValueRef].(*identity.Identity); ok {
		if _, err := checkRefClass(q); err != nil {
			return err
		}
		base := Dict{}
		for k, v := range q {
			if k != ValueRef && k != Class {
				base[k] = v
			}
		}
		cq := merge(base, ClassCertificate, nil)
		cq[ValueRef] = id.Certificate
		if err := c.update(cq, attrs); err != nil {
			return err
		}
		kq := merge(base, ClassKey, nil)
		kq[ValueRef] = id.PrivateKey
		return c.update(kq, attrs)
	}
	if _, ok := q[ValuePersistentRef]; ok {
		return status.New(status.Internal, "an identity addressed by its persistent reference cannot be updated")
	}
	for _, class := range []string{ClassCertificate, ClassKey} {
		d := make(Dict, len(q))
		for k, v := range q {
			d[k] = v
		}
		d[Class] = class
		if err := c.update(d, attrs); err != nil {
			return err
		}
	}
	return nil
}
