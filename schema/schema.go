// Package schema is the keychain's item classes and their attributes, as
// data: one table row per attribute with its four-character code, kind,
// flags and Apple's constant name.
//
// Adding an attribute to a class is one row in table.go; nothing else in
// secitemdb lists attributes. The rows follow Apple's current schema
// (securityd SecItemSchema.c, schema 12.11) as summarised in the project's
// docs/semantics.md.
package schema

import (
	"math/bits"
	"sort"
)

// Kind says which Go values an attribute accepts and what it stores
// (apple-reference.md a.2).
type Kind uint8

// The attribute kinds.
const (
	// Blob keeps the caller's type: a string stays a string, data stays
	// data, a number stays a number. Strings and data with equal bytes
	// are the same value for matching and uniqueness.
	Blob Kind = iota + 1
	// DataKind accepts data, a string (its UTF-8 bytes) or a number (four
	// bytes, little-endian SInt32) and stores data.
	DataKind
	// StringKind accepts a string or UTF-8 data and stores a string.
	StringKind
	// NumberKind accepts integers, booleans (0/1) and strings that are
	// integers (converted); any other string is kept as a string.
	NumberKind
	// DateKind accepts time.Time only.
	DateKind
	// Access is a protection class code (pdmn): ak, ck, dk, aku, cku, dku, akpu.
	Access
	// AccessControl is kSecAttrAccessControl; secitemdb accepts a
	// protection class code (an access control without constraints).
	AccessControl
	// UUIDKind accepts 16 bytes of data or empty data.
	UUIDKind
	// SHA1Kind accepts exactly 20 bytes of data.
	SHA1Kind
	// BoolKind is a 0/1 number (sync, tomb): it accepts booleans, integers
	// and integer strings, and stores 1 for any non-zero value.
	BoolKind
)

var kindNames = map[Kind]string{
	Blob: "blob", DataKind: "data", StringKind: "string", NumberKind: "number",
	DateKind: "date", Access: "access", AccessControl: "access control",
	UUIDKind: "uuid", SHA1Kind: "sha1", BoolKind: "bool",
}

// String returns the kind's name, for example "blob".
func (k Kind) String() string { return kindNames[k] }

// Flag is a set of attribute properties.
type Flag uint16

// The attribute flags. The letters are Apple's (SecDbItem.h) where one
// exists.
const (
	// PrimaryKey (P): part of the class's uniqueness constraint.
	PrimaryKey Flag = 1 << iota
	// Returned (A): returned by an Add that asks for attributes. A
	// CopyMatching that asks for attributes returns every stored attribute
	// that is not Hidden.
	Returned
	// Secret (D): part of the item's secret data, sealed apart from the
	// attributes and returned only with r_Data.
	Secret
	// DefaultEmpty (E): the default is "" (blob, string) or empty data.
	DefaultEmpty
	// DefaultZero (Z): the default is 0 (numbers) or the reference date.
	DefaultZero
	// NotNull (N): Add stores the default when the caller gives no value.
	NotNull
	// Indexed: the attribute has a posting list in the keyed index, so an
	// equality query on it costs O(matches) instead of a class scan.
	// This is secitemdb's choice (Apple's I flag is advice for SQLite).
	Indexed
	// AddOnly: only Add may set it; Update answers ErrParam
	// (decisions.md 4).
	AddOnly
	// Hidden: kept with the item but never returned as an attribute.
	Hidden
	// Reserved: callers may not use it at all (ErrParam), like "clip".
	Reserved
	// Computed: the store sets it (sha1); a caller's value is ignored on
	// Add and Update but may be used in queries.
	Computed
	// JoinKey: the value pairs a certificate with its private key
	// (cert pkhh == keys klbl) to form an identity; the store keeps a
	// posting under a tag shared by both classes.
	JoinKey
	// FewValues: the attribute takes few distinct values across a store
	// (groups, flags, protection classes, key parameters), so the store
	// caches their keyed tags, which most queries and every write
	// compute again. secitemdb's choice, like Indexed.
	FewValues
)

// Attr describes one attribute of one class.
type Attr struct {
	Code  string // four-character code, e.g. "acct"
	Kind  Kind
	Flags Flag
	Name  string // Apple's constant, e.g. "kSecAttrAccount"
	order int    // position in its class
}

// Index returns a's position in its class's attribute list.
func (a *Attr) Index() int { return a.order }

// Has reports whether a has every flag in f.
func (a *Attr) Has(f Flag) bool { return a.Flags&f == f }

// Default returns the value a missing attribute equals, and false when the
// attribute has no default. Primary-key attributes always have one: a
// missing primary-key value is replaced by its kind's default before the
// uniqueness check (apple-reference.md a.9).
func (a *Attr) Default() (Value, bool) {
	if !a.Has(DefaultEmpty) && !a.Has(DefaultZero) && !a.Has(PrimaryKey) {
		return Value{}, false
	}
	switch a.Kind {
	case Blob, StringKind:
		return String(""), true
	case DataKind, UUIDKind:
		return Data(nil), true
	case NumberKind, BoolKind:
		return Number(0), true
	case DateKind:
		return Date(ReferenceDate), true
	}
	return Value{}, false
}

// Class is an item class and its attribute list.
type Class struct {
	Code  string // "genp", "inet", "cert", "keys" or "idnt"
	Name  string // Apple's constant, e.g. "kSecClassGenericPassword"
	Attrs []*Attr

	byCode     map[string]*Attr
	codes      codeTable // byCode for four-character codes, without hashing a string
	primaryKey []*Attr
	lookupKey  []*Attr
	parts      []*Class // idnt: cert then keys
}

// sharedKey are the primary-key attributes every class shares; the rest of
// a class's primary key is its lookup key.
var sharedKey = map[string]bool{"agrp": true, "sync": true, "vwht": true, "tkid": true, "musr": true, "ggrp": true}

// Attr returns the class's attribute with the given code, or nil. For the
// identity class it looks in the certificate schema first, then in the key
// schema (apple-reference.md a.8).
func (c *Class) Attr(code string) *Attr {
	if len(code) == 4 {
		if a := c.codes.get(code); a != nil {
			return a
		}
	} else if a, ok := c.byCode[code]; ok {
		return a
	}
	for _, p := range c.parts {
		if a := p.Attr(code); a != nil {
			return a
		}
	}
	return nil
}

// PrimaryKey returns the attributes of the uniqueness constraint, in
// schema order.
func (c *Class) PrimaryKey() []*Attr { return c.primaryKey }

// LookupKey returns the class's own primary-key attributes (for genp acct
// and svce), without those every class shares (agrp, sync, vwht, tkid,
// musr, ggrp): what a caller names to find one item. The store keeps one
// posting per item for its lookup key.
func (c *Class) LookupKey() []*Attr { return c.lookupKey }

// IsIdentity reports whether c is the virtual identity class.
func (c *Class) IsIdentity() bool { return len(c.parts) > 0 }

// Parts returns the classes a virtual class joins (cert and keys for idnt).
func (c *Class) Parts() []*Class { return c.parts }

// Lookup returns the class with the given code, or nil.
func Lookup(code string) *Class { return classes[code] }

// Classes returns the four stored classes in a fixed order: genp, inet,
// cert, keys.
func Classes() []*Class { return []*Class{GenericPassword, InternetPassword, Certificate, Key} }

// Codes returns the codes of all five classes, sorted.
func Codes() []string {
	out := make([]string, 0, len(classes))
	for c := range classes {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func newClass(code, name string, rows ...[]Attr) *Class {
	c := &Class{Code: code, Name: name, byCode: map[string]*Attr{}}
	for _, group := range rows {
		for _, r := range group {
			a := r // each class owns its copy
			a.order = len(c.Attrs)
			if _, dup := c.byCode[a.Code]; dup {
				panic("schema: duplicate attribute " + a.Code + " in " + code)
			}
			c.Attrs = append(c.Attrs, &a)
			c.byCode[a.Code] = &a
			if a.Has(PrimaryKey) {
				c.primaryKey = append(c.primaryKey, &a)
				if !sharedKey[a.Code] {
					c.lookupKey = append(c.lookupKey, &a)
				}
			}
		}
	}
	c.codes = newCodeTable(c.Attrs)
	return c
}

// codeTable finds an attribute by its four-character code with one
// multiplication: slot (code × mul) >> shift, where mul was chosen at
// start-up so that no two of the class's codes share a slot.
type codeTable struct {
	mul   uint32
	shift uint
	slots []*Attr
}

func newCodeTable(attrs []*Attr) codeTable {
	// From the smallest table with room for twice the attributes (a
	// multiplier that spreads them without a clash is then found within
	// a few hundred tries), one slice per size, cleared between tries.
	for n := max(bits.Len(uint(2*len(attrs)-1)), 1); n <= 12; n++ {
		t := codeTable{shift: uint(32 - n), slots: make([]*Attr, 1<<n)}
		for t.mul = 0x9e3779b1; t.mul < 0x9e3779b1+1<<16; t.mul += 2 {
			clear(t.slots)
			if t.fill(attrs) {
				return t
			}
		}
	}
	panic("schema: no collision-free table for the attribute codes")
}

// fill places every attribute with a four-character code, and reports
// false when two share a slot.
func (t *codeTable) fill(attrs []*Attr) bool {
	for _, a := range attrs {
		if len(a.Code) != 4 {
			continue
		}
		i := t.slot(a.Code)
		if t.slots[i] != nil {
			return false
		}
		t.slots[i] = a
	}
	return true
}

func (t *codeTable) slot(code string) uint32 {
	k := uint32(code[0]) | uint32(code[1])<<8 | uint32(code[2])<<16 | uint32(code[3])<<24
	return (k * t.mul) >> t.shift
}

// get returns the attribute with the four-character code, or nil.
func (t *codeTable) get(code string) *Attr {
	if len(t.slots) == 0 {
		return nil // the identity class: its attributes are its parts'
	}
	if a := t.slots[t.slot(code)]; a != nil && a.Code == code {
		return a
	}
	return nil
}

// Protection classes: the values of pdmn (kSecAttrAccessible).
const (
	ProtWhenUnlocked                   = "ak"
	ProtAfterFirstUnlock               = "ck"
	ProtAlways                         = "dk"
	ProtWhenUnlockedThisDeviceOnly     = "aku"
	ProtAfterFirstUnlockThisDeviceOnly = "cku"
	ProtAlwaysThisDeviceOnly           = "dku"
	ProtWhenPasscodeSetThisDeviceOnly  = "akpu"
)

// Protections lists the valid pdmn values.
var Protections = []string{"ak", "ck", "dk", "aku", "cku", "dku", "akpu"}

// ValidProtection reports whether p is a valid pdmn value.
func ValidProtection(p string) bool {
	for _, q := range Protections {
		if p == q {
			return true
		}
	}
	return false
}
