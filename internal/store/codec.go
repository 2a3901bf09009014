package store

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/secitemdb/secitemdb/schema"
)

// The plaintext of a sealed blob is a list of fields followed by a zero
// byte and zero padding to a multiple of padBlock (so a ciphertext's length
// says little about its contents):
//
//	field  = len(code) code type uvarint(len(value)) value
//	type   = schema.Type (1 string, 2 data, 3 number, 4 date)
//	number = 8 bytes big-endian two's complement
//	date   = 8 bytes seconds since 1970 (big-endian, signed) ‖ 4 bytes nanoseconds
//
// Fields appear in schema order, at most once each. Decoding is strict:
// anything else is ErrCorrupt, so a round trip is byte-identical.
const padBlock = 32

// maxFieldSize caps a single value; seal refuses larger ones, so the
// decoder can too.
const maxFieldSize = schema.MaxValueSize

// ErrCorrupt is returned when stored bytes do not decode.
var ErrCorrupt = errors.New("store: corrupt record")

// encodedLen returns the length of fs's encoding (see encodeFields), so a
// buffer for plaintexts can be allocated once: a buffer that grew by
// appending would leave copies of its earlier contents behind, uncleared.
func encodedLen(fs schema.Fields) int {
	n := 1 // the terminating zero
	for _, f := range fs {
		n += 1 + len(f.Attr.Code) + 1
		switch f.Value.T {
		case schema.TString:
			n += uvarintLen(uint64(len(f.Value.Str))) + len(f.Value.Str)
		case schema.TData:
			n += uvarintLen(uint64(len(f.Value.Data))) + len(f.Value.Data)
		case schema.TNumber:
			n += 1 + 8
		case schema.TDate:
			n += 1 + 12
		}
	}
	return (n + padBlock - 1) / padBlock * padBlock
}

// encodeFields appends the plaintext encoding of fs to dst.
func encodeFields(dst []byte, fs schema.Fields) []byte {
	for i := 1; i < len(fs); i++ {
		if fs[i].Attr.Index() < fs[i-1].Attr.Index() {
			panic("store: fields are not in schema order")
		}
	}
	start := len(dst)
	for _, f := range fs {
		dst = append(dst, byte(len(f.Attr.Code)))
		dst = append(dst, f.Attr.Code...)
		dst = append(dst, byte(f.Value.T))
		switch f.Value.T {
		case schema.TString:
			dst = binary.AppendUvarint(dst, uint64(len(f.Value.Str)))
			dst = append(dst, f.Value.Str...)
		case schema.TData:
			dst = binary.AppendUvarint(dst, uint64(len(f.Value.Data)))
			dst = append(dst, f.Value.Data...)
		case schema.TNumber:
			dst = append(dst, 8)
			dst = binary.BigEndian.AppendUint64(dst, uint64(f.Value.Num))
		case schema.TDate:
			dst = append(dst, 12)
			dst = binary.BigEndian.AppendUint64(dst, uint64(f.Value.Time.Unix()))
			dst = binary.BigEndian.AppendUint32(dst, uint32(f.Value.Time.Nanosecond()))
		default:
			panic("store: encoding an invalid value")
		}
	}
	dst = append(dst, 0)
	for (len(dst)-start)%padBlock != 0 {
		dst = append(dst, 0)
	}
	return dst
}

// uvarintLen is the length of the minimal uvarint encoding of v; the
// decoder rejects longer (non-canonical) encodings so that a round trip is
// byte-identical.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// decodeFields parses a plaintext made by encodeFields for class c. Byte
// slices in the result are copies.
func decodeFields(c *schema.Class, b []byte) (schema.Fields, error) {
	return decodeFieldsIn(c, b, false)
}

// decodeFieldsIn is decodeFields; with share set, byte values are slices
// of b itself (capped at their length, so appending to one cannot reach
// the next), for a plaintext buffer the result may keep.
func decodeFieldsIn(c *schema.Class, b []byte, share bool) (schema.Fields, error) {
	var fs schema.Fields
	last := -1
	i := 0
	for {
		if i >= len(b) {
			return nil, ErrCorrupt
		}
		n := int(b[i])
		i++
		if n == 0 {
			break
		}
		if i+n+1 > len(b) {
			return nil, ErrCorrupt
		}
		a := c.Attr(string(b[i : i+n]))
		i += n
		if a == nil {
			return nil, ErrCorrupt
		}
		if a.Index() <= last {
			return nil, ErrCorrupt
		}
		last = a.Index()
		t := schema.Type(b[i])
		i++
		l, k := binary.Uvarint(b[i:])
		if k <= 0 || k != uvarintLen(l) || l > maxFieldSize || uint64(len(b)-i-k) < l {
			return nil, ErrCorrupt
		}
		i += k
		raw := b[i : i+int(l)]
		i += int(l)
		var v schema.Value
		switch t {
		case schema.TString:
			v = schema.String(string(raw))
		case schema.TData:
			if share {
				v = schema.Data(raw[:len(raw):len(raw)])
			} else {
				v = schema.Data(append([]byte{}, raw...))
			}
		case schema.TNumber:
			if l != 8 {
				return nil, ErrCorrupt
			}
			v = schema.Number(int64(binary.BigEndian.Uint64(raw)))
		case schema.TDate:
			if l != 12 {
				return nil, ErrCorrupt
			}
			ns := binary.BigEndian.Uint32(raw[8:])
			if ns >= 1e9 {
				return nil, ErrCorrupt
			}
			v = schema.Date(time.Unix(int64(binary.BigEndian.Uint64(raw)), int64(ns)))
		default:
			return nil, ErrCorrupt
		}
		fs = append(fs, schema.Field{Attr: a, Value: v})
	}
	// The rest is padding: zeros, up to a block boundary.
	if len(b)%padBlock != 0 {
		return nil, ErrCorrupt
	}
	for _, z := range b[i:] {
		if z != 0 {
			return nil, ErrCorrupt
		}
	}
	if len(b)-i >= padBlock {
		return nil, ErrCorrupt
	}
	return fs, nil
}

// EncodeItem returns the plain encoding of one item for a portable backup:
// the class code, then the attributes and the secret in the sealed-blob
// encoding. The caller encrypts it.
func EncodeItem(c *schema.Class, fields, secret schema.Fields) []byte {
	out := append([]byte(nil), c.Code...)
	attrs := encodeFields(nil, fields)
	out = binary.AppendUvarint(out, uint64(len(attrs)))
	out = append(out, attrs...)
	return encodeFields(out, secret)
}

// DecodeItem reverses EncodeItem, strictly.
func DecodeItem(b []byte) (*schema.Class, schema.Fields, schema.Fields, error) {
	if len(b) < 4 {
		return nil, nil, nil, ErrCorrupt
	}
	c := schema.Lookup(string(b[:4]))
	if c == nil || c.IsIdentity() {
		return nil, nil, nil, ErrCorrupt
	}
	l, k := binary.Uvarint(b[4:])
	if k <= 0 || k != uvarintLen(l) || l > uint64(len(b)-4-k) {
		return nil, nil, nil, ErrCorrupt
	}
	attrs, err := decodeFields(c, b[4+k:4+k+int(l)])
	if err != nil {
		return nil, nil, nil, err
	}
	secret, err := decodeFields(c, b[4+k+int(l):])
	if err != nil {
		return nil, nil, nil, err
	}
	return c, attrs, secret, nil
}
