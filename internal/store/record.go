package store

import (
	"encoding/binary"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// recordFormat is the version byte every record starts with.
const recordFormat = 1

// A record is stored under its row number (8 bytes, big-endian) in its
// class's bucket:
//
//	off  size  field
//	0    1     format (1)
//	1    4     key ID of the class key that wraps the item key
//	5    16    item ID (the persistent reference's identifier)
//	21   8     record version (1 on Add, +1 on every rewrite)
//	29   1     p = number of posted tags
//	30   1     t = number of attribute tags
//	31   12p   posted tags: the postings this record owns in the index
//	     12t   attribute tags, one per stored attribute, sorted
//	     60    the item key, wrapped by the class key (AES-256-GCM)
//	     var   uvarint length ‖ sealed attributes (XChaCha20-Poly1305)
//	     rest  sealed secret (XChaCha20-Poly1305)
//
// Everything up to the end of the tags is the header. The header, the
// store ID, the class and the row number are the associated data of all
// three sealed parts (each with its own label), so a sealed part moved to
// another row, class, store or version, or a header edited in place,
// fails authentication. The tags let queries, uniqueness checks and locked
// deletes work without decrypting; they are keyed (see protect.Tag), so
// the file holds no attribute value and no unkeyed hash of one.
const (
	offKeyID   = 1
	offRefID   = 5
	offVersion = 21
	offCounts  = 29
	headerBase = 31
	tagSize    = protect.TagSize
)

// Record is one stored item, parsed but not decrypted. Its bytes are a
// private copy, valid after the transaction that read it.
type Record struct {
	Class   *schema.Class
	Row     uint64
	KeyID   uint32
	RefID   [16]byte
	Version uint64

	raw     []byte
	nposted int
	ntags   int
	hdrLen  int
	attrEnd int // end of the sealed attributes
	attrOff int // start of the sealed attributes
}

func parseRecord(c *schema.Class, row uint64, raw []byte) (*Record, error) {
	if len(raw) < headerBase || raw[0] != recordFormat {
		return nil, ErrCorrupt
	}
	r := &Record{Class: c, Row: row, raw: raw}
	r.KeyID = binary.BigEndian.Uint32(raw[offKeyID:])
	copy(r.RefID[:], raw[offRefID:])
	r.Version = binary.BigEndian.Uint64(raw[offVersion:])
	r.nposted, r.ntags = int(raw[offCounts]), int(raw[offCounts+1])
	r.hdrLen = headerBase + (r.nposted+r.ntags)*tagSize
	if len(raw) < r.hdrLen+protect.WrappedItemKeySize {
		return nil, ErrCorrupt
	}
	off := r.hdrLen + protect.WrappedItemKeySize
	l, k := binary.Uvarint(raw[off:])
	if k <= 0 || k != uvarintLen(l) || l > uint64(len(raw)-off-k) {
		return nil, ErrCorrupt
	}
	r.attrOff = off + k
	r.attrEnd = r.attrOff + int(l)
	if len(raw)-r.attrEnd < protect.BlobOverhead || int(l) < protect.BlobOverhead {
		return nil, ErrCorrupt
	}
	return r, nil
}

// Readable reports whether the record's header parsed; a record that did
// not is only good for deleting or replacing.
func (r *Record) Readable() bool { return r.hdrLen > 0 }

func (r *Record) header() []byte  { return r.raw[:r.hdrLen] }
func (r *Record) wrapped() []byte { return r.raw[r.hdrLen : r.hdrLen+protect.WrappedItemKeySize] }
func (r *Record) sealedAttrs() []byte {
	return r.raw[r.attrOff:r.attrEnd]
}
func (r *Record) sealedSecret() []byte { return r.raw[r.attrEnd:] }

// Raw returns the stored bytes (for inspection tools and tests). The
// caller must not modify them.
func (r *Record) Raw() []byte { return r.raw }

func (r *Record) postedTags() []byte {
	return r.raw[headerBase : headerBase+r.nposted*tagSize]
}

func (r *Record) attrTags() []byte {
	s := headerBase + r.nposted*tagSize
	return r.raw[s : s+r.ntags*tagSize]
}

// HasTag reports whether one of the record's attributes has tag t.
func (r *Record) HasTag(t protect.Tag) bool {
	return searchTags(r.attrTags(), t)
}

// hasPosted reports whether the record owns the posting t (its header lists
// it). The index itself is not authenticated; a posting counts only when
// the record's header, which is bound into the sealed parts' AAD, agrees.
func (r *Record) hasPosted(t protect.Tag) bool {
	return searchTags(r.postedTags(), t)
}

// compareTags assumes 12-byte tags; this fails to compile otherwise.
var _ = [1]int{}[tagSize-12]

// compareTags orders tags as bytes.Compare does, a word at a time, at a
// fraction of its cost (every read makes four or five searchTags).
func compareTags(a, b protect.Tag) int {
	x, y := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if x == y {
		x, y = uint64(binary.BigEndian.Uint32(a[8:])), uint64(binary.BigEndian.Uint32(b[8:]))
	}
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// searchTags binary-searches a sorted run of tags.
func searchTags(tags []byte, t protect.Tag) bool {
	lo, hi := 0, len(tags)/tagSize
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch compareTags(protect.Tag(tags[m*tagSize:(m+1)*tagSize]), t) {
		case 0:
			return true
		case -1:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// PersistentRef returns the record's 20-byte persistent reference.
func (r *Record) PersistentRef() []byte {
	out := make([]byte, 0, 20)
	out = append(out, r.Class.Code...)
	return append(out, r.RefID[:]...)
}

// Labels of the three sealed parts.
const (
	partKey    = 'k'
	partAttrs  = 'a'
	partSecret = 's'
)

// aad returns the associated data of one sealed part of a record.
func aad(dst []byte, part byte, storeID *[protect.StoreIDSize]byte, class string, row uint64, header []byte) []byte {
	dst = append(dst, "secitemdb v1 item"...)
	dst = append(dst, part)
	dst = append(dst, storeID[:]...)
	dst = append(dst, class...)
	dst = binary.BigEndian.AppendUint64(dst, row)
	return append(dst, header...)
}

func rowKey(row uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), row) }
