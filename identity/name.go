package identity

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrMalformedName is returned for bytes that are not a DER X.501 Name.
var ErrMalformedName = errors.New("identity: malformed X.501 name")

// NormalizeName returns the form in which the keychain stores a
// certificate's subj and issr: the contents of the Name (its RDN SETs,
// without the outer SEQUENCE tag and length), with every PrintableString
// value normalised: ASCII letters upper-cased, leading and trailing spaces
// removed, runs of spaces collapsed to one, and every enclosing length
// re-encoded. Other string types are copied unchanged.
//
// name may be a full DER Name (starting with the SEQUENCE tag 0x30) or
// already Name contents (starting with the SET tag 0x31, or empty).
func NormalizeName(name []byte) ([]byte, error) {
	in := cryptobyte.String(name)
	if len(name) > 0 && name[0] == 0x30 {
		var inner cryptobyte.String
		if !in.ReadASN1(&inner, cbasn1.SEQUENCE) || !in.Empty() {
			return nil, ErrMalformedName
		}
		in = inner
	}
	var b cryptobyte.Builder
	for !in.Empty() {
		var set cryptobyte.String
		if !in.ReadASN1(&set, cbasn1.SET) {
			return nil, ErrMalformedName
		}
		var atvs [][2][]byte // OID element, normalised value element
		for !set.Empty() {
			var atv, oid, val cryptobyte.String
			var tag cbasn1.Tag
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) ||
				!atv.ReadASN1Element(&oid, cbasn1.OBJECT_IDENTIFIER) ||
				!atv.ReadAnyASN1(&val, &tag) || !atv.Empty() {
				return nil, ErrMalformedName
			}
			content := []byte(val)
			if tag == cbasn1.PrintableString {
				content = normalizePrintable(content)
			}
			var vb cryptobyte.Builder
			vb.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(content) })
			ve, err := vb.Bytes()
			if err != nil {
				return nil, ErrMalformedName
			}
			atvs = append(atvs, [2][]byte{oid, ve})
		}
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, atv := range atvs {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddBytes(atv[0])
					b.AddBytes(atv[1])
				})
			}
		})
	}
	out, err := b.Bytes()
	if err != nil {
		return nil, ErrMalformedName
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

func normalizePrintable(s []byte) []byte {
	out := make([]byte, 0, len(s))
	space := false
	for _, c := range s {
		if c == ' ' {
			space = len(out) > 0
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return out
}
