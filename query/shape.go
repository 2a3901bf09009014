package query

import (
	"github.com/secitemdb/secitemdb/schema"
)

// Item is what the engine found for one matching item, for shaping.
type Item struct {
	Class         string        // the stored class ("genp", ...), or "idnt"
	Attrs         schema.Fields // the item's attributes, when they were read
	Secret        schema.Fields // v_Data and other secrets, when data was asked for
	Ref           any           // the Go object for r_Ref; nil for passwords
	PersistentRef []byte        // when r_PersistentRef was asked for
}

// Shape builds a result in Apple's shapes (apple-reference.md c.4) from the
// matching items, in order. D is the dictionary type to build (the public
// package passes its Dict).
//
//   - no return key: nil (an empty []any when the limit is not one);
//   - one return key and limit one: that value ([]byte, D or the ref);
//   - several return keys: one D with the attributes plus v_Data, v_Ref
//     and v_PersistentRef as asked, and class when a ref is asked;
//   - any limit other than one: a []any of those per-item values, even
//     for a single match; nil refs (passwords) are left out.
func Shape[D ~map[string]any](p *Plan, items []Item) any {
	single := p.Op == Add || p.Limit == 1
	if p.Op == Add && p.Flavor == FileBased && p.Return.Has(ReturnAttributes) {
		// The shim answers an add that returns attributes with an array.
		single = false
	}
	if p.Return == 0 {
		if single {
			return nil
		}
		return []any{}
	}
	if single {
		if len(items) == 0 {
			return nil
		}
		return shapeOne[D](p, &items[0])
	}
	out := make([]any, 0, len(items))
	for i := range items {
		if v := shapeOne[D](p, &items[i]); v != nil {
			out = append(out, v)
		}
	}
	return out
}

func shapeOne[D ~map[string]any](p *Plan, it *Item) any {
	r := p.Return
	if r.Count() == 1 {
		switch r {
		case ReturnData:
			return dataOf(it)
		case ReturnPersistentRef:
			return append([]byte(nil), it.PersistentRef...)
		case ReturnRef:
			return it.Ref
		case ReturnAttributes:
			return AttributeDict[D](p, it)
		}
	}
	d := AttributeDict[D](p, it)
	if r.Has(ReturnRef) {
		if it.Ref != nil {
			d[KeyValueRef] = it.Ref
		}
		d[KeyClass] = it.Class
	}
	if r.Has(ReturnPersistentRef) {
		d[KeyValuePref] = append([]byte(nil), it.PersistentRef...)
	}
	return d
}

// dataOf returns the item's v_Data. The engine decoded it into a slice of
// its own, so it is handed out without another copy.
func dataOf(it *Item) []byte {
	if v, ok := it.Secret.Get(KeyValueData); ok && v.Data != nil {
		return v.Data
	}
	return []byte{}
}

// AttributeDict returns the attributes of it as a dictionary: for an Add,
// the attributes Apple returns from an add (the Returned flag); for a
// query, every stored attribute but the hidden ones. Secrets (v_Data and
// the internet password's extra data) and sha1 appear only when data was
// asked for. The file-based flavor returns issr and subj as full DER
// Names.
func AttributeDict[D ~map[string]any](p *Plan, it *Item) D {
	withData := p.Return.Has(ReturnData)
	d := make(D, len(it.Attrs)+1)
	for _, f := range it.Attrs {
		a := f.Attr
		switch {
		case a.Has(schema.Hidden):
			continue
		case p.Op == Add && !a.Has(schema.Returned):
			continue
		case a.Has(schema.Computed) && !withData:
			continue
		}
		v := f.Value.Go()
		if p.Flavor == FileBased && (a.Code == "issr" || a.Code == "subj") {
			v = FullName(f.Value.Bytes())
		}
		d[a.Code] = v
	}
	if withData {
		for _, f := range it.Secret {
			d[f.Attr.Code] = f.Value.Go()
		}
		if _, ok := d[KeyValueData]; !ok {
			d[KeyValueData] = []byte{}
		}
	}
	return d
}

// FullName wraps normalised Name contents (issr, subj) back into a DER
// SEQUENCE, the form the file-based keychain returns (pitfalls.md 12).
func FullName(contents []byte) []byte {
	out := []byte{0x30}
	n := len(contents)
	switch {
	case n < 0x80:
		out = append(out, byte(n))
	case n < 0x100:
		out = append(out, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, 0x82, byte(n>>8), byte(n))
	default:
		out = append(out, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, contents...)
}
