package protect

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
)

// TagSize is the size of a keyed index tag. 96 bits keep accidental
// collisions below 2^-48 even for a trillion comparisons; tags of values an
// attacker does not know cannot be computed without the index key.
const TagSize = 12

// Tag is a keyed digest of one attribute value (or of a whole primary
// key): HMAC-SHA256 under the store's index key, truncated. Equal values
// have equal tags, so tags answer equality filters, uniqueness checks and
// locked deletes without decrypting anything, and without leaving a value
// or an unkeyed hash of it in the file.
type Tag [TagSize]byte

// MACSize is the size of the version-table MACs.
const MACSize = sha256.Size

// Indexer computes tags and the other keyed values derived from the
// index key. It is safe for concurrent use. The index key is wrapped by the
// device secret only, so an Indexer exists whenever the store is open,
// locked or not.
type Indexer struct {
	tags sync.Pool // hash.Hash, HMAC under the tag key
	macs sync.Pool // hash.Hash, HMAC under the version key
	refs cipher.Block
}

func newIndexer(indexKey []byte) *Indexer {
	tagKey := derive(indexKey, "secitemdb v1 index tags")
	macKey := derive(indexKey, "secitemdb v1 version table")
	refKey := derive(indexKey, "secitemdb v1 persistent references")
	ix := &Indexer{}
	ix.tags.New = func() any { return hmac.New(sha256.New, tagKey) }
	ix.macs.New = func() any { return hmac.New(sha256.New, macKey) }
	b, err := aes.NewCipher(refKey)
	if err != nil {
		panic("protect: " + err.Error())
	}
	ix.refs = b
	clear(refKey)
	return ix
}

func derive(key []byte, label string) []byte {
	out, err := hkdf.Expand(sha256.New, key, label, KeySize)
	if err != nil {
		panic("protect: " + err.Error())
	}
	return out
}

// Tag returns the tag of a value: HMAC(class ‖ attribute code ‖ value),
// each part length-prefixed, so equal bytes under different attributes
// or classes never share a tag.
func (ix *Indexer) Tag(class, code string, value []byte) Tag {
	h := ix.tags.Get().(hash.Hash)
	h.Reset()
	var hdr [2]byte
	hdr[0] = byte(len(class))
	h.Write(hdr[:1])
	h.Write([]byte(class))
	hdr[0] = byte(len(code))
	h.Write(hdr[:1])
	h.Write([]byte(code))
	h.Write(value)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	ix.tags.Put(h)
	var t Tag
	copy(t[:], sum[:])
	return t
}

// MAC returns HMAC-SHA256 of data under the version-table key.
func (ix *Indexer) MAC(data ...[]byte) [MACSize]byte {
	h := ix.macs.Get().(hash.Hash)
	h.Reset()
	for _, d := range data {
		h.Write(d)
	}
	var sum [MACSize]byte
	h.Sum(sum[:0])
	ix.macs.Put(h)
	return sum
}

// RefID returns the 16-byte identifier of the item stored at row: the
// row number and 8 random bytes, enciphered (AES-256) under a key derived
// from the index key. It looks random and never repeats, and RowOf turns it
// back into the row without a lookup table.
func (ix *Indexer) RefID(row uint64, random [8]byte) [16]byte {
	var in, out [16]byte
	binary.BigEndian.PutUint64(in[:8], row)
	copy(in[8:], random[:])
	ix.refs.Encrypt(out[:], in[:])
	return out
}

// RowOf returns the row a RefID names. Anyone can hand in 16 bytes, so
// the caller must check that the row's stored identifier is id.
func (ix *Indexer) RowOf(id [16]byte) uint64 {
	var out [16]byte
	ix.refs.Decrypt(out[:], id[:])
	return binary.BigEndian.Uint64(out[:8])
}
