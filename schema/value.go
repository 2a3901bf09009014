package schema

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Type is the type of a stored attribute value. It is what a value became
// after conversion (apple-reference.md a.2), not the attribute's Kind: a
// Blob attribute keeps the caller's type, so its values may be TString,
// TData or TNumber.
type Type uint8

// The value types. Their numbers are part of the on-disk record encoding
// (internal/store); never renumber them.
const (
	TString Type = 1
	TData   Type = 2
	TNumber Type = 3
	TDate   Type = 4
)

// MaxValueSize is the largest string or data value an item can hold
// (64 MiB). Real credentials are far smaller; the cap bounds what a
// damaged length field can make a decoder allocate, and Add and Update
// reject anything larger with errSecParam rather than store what could
// not be read back.
const MaxValueSize = 64 << 20

// Len is the length of a string or data value (0 for numbers and dates).
func (v Value) Len() int {
	switch v.T {
	case TString:
		return len(v.Str)
	case TData:
		return len(v.Data)
	}
	return 0
}

// ReferenceDate is Apple's reference date (CFAbsoluteTime 0), the default of
// date attributes that are part of a primary key.
var ReferenceDate = time.Date(2001, time.January, 1, 0, 0, 0, 0, time.UTC)

// Value is one converted attribute value. The zero Value is invalid.
type Value struct {
	T    Type
	Str  string    // TString
	Data []byte    // TData
	Num  int64     // TNumber
	Time time.Time // TDate, always UTC
}

// String returns a TString value.
func String(s string) Value { return Value{T: TString, Str: s} }

// Data returns a TData value holding b (not copied).
func Data(b []byte) Value {
	if b == nil {
		b = []byte{}
	}
	return Value{T: TData, Data: b}
}

// Number returns a TNumber value.
func Number(n int64) Value { return Value{T: TNumber, Num: n} }

// Date returns a TDate value in UTC.
func Date(t time.Time) Value { return Value{T: TDate, Time: t.UTC()} }

// Valid reports whether v holds a value.
func (v Value) Valid() bool { return v.T >= TString && v.T <= TDate }

// Go returns v as the Go value the public API hands out: string, []byte
// (a copy), int64 or time.Time.
func (v Value) Go() any {
	switch v.T {
	case TString:
		return v.Str
	case TData:
		return bytes.Clone(v.Data)
	case TNumber:
		return v.Num
	case TDate:
		return v.Time
	}
	return nil
}

// Canonical appends the bytes two values are compared by. Strings and data
// with the same bytes are one value (the device compares blob attributes by
// the SHA-1 of their bytes, so "a" and []byte("a") are equal), numbers and
// dates each have their own prefix, so the number 1 never equals the
// string "1" (a numeric string became a number during conversion anyway).
func (v Value) Canonical(dst []byte) []byte {
	switch v.T {
	case TString:
		dst = append(dst, 'b')
		return append(dst, v.Str...)
	case TData:
		dst = append(dst, 'b')
		return append(dst, v.Data...)
	case TNumber:
		dst = append(dst, 'n')
		return binary.BigEndian.AppendUint64(dst, uint64(v.Num))
	case TDate:
		dst = append(dst, 'd')
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.Time.Unix()))
		return binary.BigEndian.AppendUint32(dst, uint32(v.Time.Nanosecond()))
	}
	return dst
}

// CanonicalLen is len(v.Canonical(nil)), computed without encoding.
func (v Value) CanonicalLen() int {
	switch v.T {
	case TString:
		return 1 + len(v.Str)
	case TData:
		return 1 + len(v.Data)
	case TNumber:
		return 9
	case TDate:
		return 13
	}
	return 0
}

// Equal reports whether v and w are the same value under the device's
// comparison rules (see Canonical).
func (v Value) Equal(w Value) bool {
	switch {
	case v.T == TNumber || w.T == TNumber:
		return v.T == w.T && v.Num == w.Num
	case v.T == TDate || w.T == TDate:
		return v.T == w.T && v.Time.Equal(w.Time)
	}
	return bytes.Equal(v.bytes(), w.bytes())
}

func (v Value) bytes() []byte {
	if v.T == TString {
		return []byte(v.Str)
	}
	return v.Data
}

// Bytes returns the bytes of a string or data value, and nil otherwise.
// The result must not be modified.
func (v Value) Bytes() []byte {
	switch v.T {
	case TString, TData:
		return v.bytes()
	}
	return nil
}

// GoString formats v for debugging. It prints values, so never use it on
// secrets.
func (v Value) GoString() string {
	switch v.T {
	case TString:
		return fmt.Sprintf("%q", v.Str)
	case TData:
		return fmt.Sprintf("<%x>", v.Data)
	case TNumber:
		return fmt.Sprintf("%d", v.Num)
	case TDate:
		return v.Time.Format(time.RFC3339Nano)
	}
	return "<invalid>"
}

// Field is one attribute of an item or one equality filter of a query.
type Field struct {
	Attr  *Attr
	Value Value
}

// Fields is an attribute list in schema order, at most one Field per Attr.
type Fields []Field

// Get returns the value of the attribute with the given code.
func (fs Fields) Get(code string) (Value, bool) {
	for _, f := range fs {
		if f.Attr.Code == code {
			return f.Value, true
		}
	}
	return Value{}, false
}

// Set replaces or adds the value of a, keeping the list in schema order.
func (fs Fields) Set(a *Attr, v Value) Fields {
	for i := range fs {
		if fs[i].Attr == a {
			fs[i].Value = v
			return fs
		}
		if fs[i].Attr.order > a.order {
			fs = append(fs, Field{})
			copy(fs[i+1:], fs[i:])
			fs[i] = Field{Attr: a, Value: v}
			return fs
		}
	}
	return append(fs, Field{Attr: a, Value: v})
}

// Delete removes the attribute with the given code.
func (fs Fields) Delete(code string) Fields {
	for i := range fs {
		if fs[i].Attr.Code == code {
			return append(fs[:i], fs[i+1:]...)
		}
	}
	return fs
}

// AppendKey appends to dst the values of attrs in fs, missing ones as
// their defaults, each in canonical form and length-prefixed (uvarint, any
// size), so no two keys share an encoding: the byte form of a primary key
// or lookup key.
func (fs Fields) AppendKey(dst []byte, attrs []*Attr) []byte {
	for _, a := range attrs {
		// Each read builds a lookup key: find the value in place (the
		// same attribute is nearly always the same pointer) rather than
		// copy it out through Get.
		var v *Value
		for i := range fs {
			if fs[i].Attr == a || fs[i].Attr.Code == a.Code {
				v = &fs[i].Value
				break
			}
		}
		if v == nil {
			d, _ := a.Default()
			v = &d
		}
		dst = binary.AppendUvarint(dst, uint64(v.CanonicalLen()))
		dst = v.Canonical(dst)
	}
	return dst
}

// Clone returns a copy of the list (values share their byte slices).
func (fs Fields) Clone() Fields { return append(Fields(nil), fs...) }
