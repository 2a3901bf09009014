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
	tags sync.Pool // *macState, HMAC under the tag key
	macs sync.Pool // *macState, HMAC under the version key
	refs cipher.Block
}

// macState is a pooled HMAC with a scratch buffer of its own. Everything
// handed to the hash.Hash interface lives in the pooled state, so the
// caller's bytes never escape and computing a tag allocates nothing.
type macState struct {
	h    hash.Hash
	buf  [1024]byte
	n    int
	full bool // buf was filled (and flushed) at least once
	sum  [sha256.Size]byte
}

// write adds b to the HMAC through the scratch buffer.
func write[T string | []byte](m *macState, b T) {
	for len(b) > 0 {
		if m.n == len(m.buf) {
			m.h.Write(m.buf[:])
			m.n, m.full = 0, true
		}
		c := copy(m.buf[m.n:], b)
		m.n += c
		b = b[c:]
	}
}

// finish flushes the buffer and returns the HMAC (valid until the state
// is reused).
func (m *macState) finish() []byte {
	m.h.Write(m.buf[:m.n])
	// The buffer held attribute values: wipe what was used before the
	// state goes back to the pool.
	if m.full {
		clear(m.buf[:])
	} else {
		clear(m.buf[:m.n])
	}
	m.n, m.full = 0, false
	return m.h.Sum(m.sum[:0])
}

func newIndexer(indexKey []byte) *Indexer {
	tagKey := derive(indexKey, "secitemdb v1 index tags")
	macKey := derive(indexKey, "secitemdb v1 version table")
	refKey := derive(indexKey, "secitemdb v1 persistent references")
	ix := &Indexer{}
	ix.tags.New = func() any { return &macState{h: hmac.New(sha256.New, tagKey)} }
	ix.macs.New = func() any { return &macState{h: hmac.New(sha256.New, macKey)} }
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
	m := ix.tags.Get().(*macState)
	m.h.Reset()
	write(m, []byte{byte(len(class))})
	write(m, class)
	write(m, []byte{byte(len(code))})
	write(m, code)
	write(m, value)
	var t Tag
	copy(t[:], m.finish())
	ix.tags.Put(m)
	return t
}

// MAC returns HMAC-SHA256 of data under the version-table key.
func (ix *Indexer) MAC(data ...[]byte) [MACSize]byte {
	m := ix.macs.Get().(*macState)
	m.h.Reset()
	for _, d := range data {
		write(m, d)
	}
	var sum [MACSize]byte
	copy(sum[:], m.finish())
	ix.macs.Put(m)
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
