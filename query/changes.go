package query

import (
	"slices"
	"sort"
	"time"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// Changes is a parsed attributesToUpdate dictionary of SecItemUpdate.
type Changes struct {
	Fields schema.Fields // attribute values to set
	Secret schema.Fields // v_Data and other secret attributes to set
	// Ignored lists keys accepted and dropped (mdat, sha1), for the trace.
	Ignored []string
}

// ParseChanges checks the attributes an Update sets on items of class
// (apple-reference.md c.7 and decisions.md 4): v_Data must be []byte;
// every other key must be an attribute of the class (NoSuchAttr
// otherwise, even class and r_* keys); add-only attributes (accc, tkid,
// musr, ggrp) and nil values are ErrParam; mdat and sha1 are set by the
// store and are ignored.
func ParseChanges(class *schema.Class, attrs map[string]any) (*Changes, error) {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	ch := &Changes{}
	for _, k := range keys {
		v := attrs[k]
		if k == KeyValueData {
			g := classify(v)
			if g.kind != goBytes {
				return nil, status.New(status.Param, "v_Data must be []byte, not %s", g.name)
			}
			ch.Secret = ch.Secret.Set(class.Attr(KeyValueData), schema.Data(clone(g.b)))
			continue
		}
		a := class.Attr(k)
		if a == nil || len(k) != 4 {
			return nil, status.New(status.NoSuchAttr, "%q is not an attribute of class %q that can be updated", k, class.Code)
		}
		if v == nil {
			return nil, status.New(status.Param, "attribute %q has a nil value", k)
		}
		switch {
		case a.Has(schema.Reserved):
			return nil, status.New(status.Param, "attribute %q is reserved", k)
		case a.Has(schema.AddOnly):
			return nil, status.New(status.Param, "attribute %q is add-only: set it when adding the item", k)
		case a.Has(schema.Computed), k == "mdat":
			ch.Ignored = append(ch.Ignored, k)
			continue
		}
		val, err := Convert(a, v)
		if err != nil {
			return nil, err
		}
		if a.Has(schema.Secret) {
			ch.Secret = ch.Secret.Set(a, val)
		} else {
			ch.Fields = ch.Fields.Set(a, val)
		}
	}
	return ch, nil
}

// ApplyAddDefaults completes an Add plan the way the device does before
// storing (apple-reference.md b and c.5): cdat and mdat are forced to now,
// every not-null attribute without a value gets its default, and pdmn is
// inferred (dku for the com.apple.apsd group, dk for certificates, ak
// otherwise) or taken from accc. ResolveAccess must have run first.
func (p *Plan) ApplyAddDefaults(now time.Time) error {
	c := p.Class
	// Room, in one allocation, for every attribute set below and the
	// sync UUID the caller adds next, instead of a reallocation at each
	// Set that outgrows the list.
	room := 4 // cdat, mdat, pdmn, UUID
	for _, a := range c.Attrs {
		if a.Has(schema.NotNull) && !a.Has(schema.Reserved) {
			room++
		}
	}
	p.Fields = slices.Grow(p.Fields, room)
	p.Fields = p.Fields.Set(c.Attr("cdat"), schema.Date(now))
	p.Fields = p.Fields.Set(c.Attr("mdat"), schema.Date(now))
	for _, a := range c.Attrs {
		if !a.Has(schema.NotNull) || a.Has(schema.Reserved) {
			continue
		}
		if _, ok := p.Fields.Get(a.Code); ok {
			continue
		}
		if def, ok := a.Default(); ok {
			p.Fields = p.Fields.Set(a, def)
		}
	}
	pdmn, hasPdmn := p.Fields.Get("pdmn")
	if accc, ok := p.Fields.Get("accc"); ok {
		if hasPdmn && pdmn.Str != accc.Str {
			return status.New(status.Param, "conflicting pdmn %q and accc %q", pdmn.Str, accc.Str)
		}
		p.Fields = p.Fields.Set(c.Attr("pdmn"), accc)
		return nil
	}
	if hasPdmn {
		return nil
	}
	prot := schema.ProtWhenUnlocked
	if g, _ := p.Fields.Get("agrp"); g.Str == "com.apple.apsd" {
		prot = schema.ProtAlwaysThisDeviceOnly
	} else if c == schema.Certificate {
		prot = schema.ProtAlways
	}
	p.Fields = p.Fields.Set(c.Attr("pdmn"), schema.String(prot))
	return nil
}
