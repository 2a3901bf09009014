package protect

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes of the values this package produces.
const (
	KeySize = 32 // every symmetric key: class keys, item keys, the index key

	// BlobOverhead is what SealBlob adds to a plaintext: a 24-byte
	// XChaCha20 nonce and a 16-byte Poly1305 tag.
	BlobOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

	// WrappedItemKeySize is the size of an item key wrapped by a class
	// key: a 12-byte AES-GCM nonce, the 32-byte key and a 16-byte tag.
	WrappedItemKeySize = 12 + KeySize + 16
)

// ErrDecode is returned when a sealed value fails authentication: it was
// tampered with, moved to another record, replayed, truncated, or sealed
// under another key. It says nothing about which.
var ErrDecode = errors.New("protect: message authentication failed")

// ItemKey is the random key of one item. Wipe it when done.
type ItemKey [KeySize]byte

// Wipe zeroes the key.
func (k *ItemKey) Wipe() { clear(k[:]) }

// NewItemKey returns a fresh random item key.
func NewItemKey() ItemKey {
	var k ItemKey
	if _, err := rand.Read(k[:]); err != nil {
		panic("protect: crypto/rand failed: " + err.Error())
	}
	return k
}

// SealBlob encrypts plaintext under key with XChaCha20-Poly1305 and a
// random nonce, binding it to aad, and appends nonce‖ciphertext‖tag to dst.
// Random 192-bit nonces are safe for any number of messages per key.
func SealBlob(dst []byte, key *ItemKey, aad, plaintext []byte) []byte {
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("protect: " + err.Error())
	}
	start := len(dst)
	dst = append(dst, make([]byte, chacha20poly1305.NonceSizeX)...)
	nonce := dst[start:]
	if _, err := rand.Read(nonce); err != nil {
		panic("protect: crypto/rand failed: " + err.Error())
	}
	return aead.Seal(dst, nonce, plaintext, aad)
}

// OpenBlob decrypts a blob made by SealBlob, appending the plaintext to
// dst. Any failure is ErrDecode; dst's spare capacity may be overwritten.
func OpenBlob(dst []byte, key *ItemKey, aad, blob []byte) ([]byte, error) {
	if len(blob) < BlobOverhead {
		return nil, ErrDecode
	}
	aead, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic("protect: " + err.Error())
	}
	n := chacha20poly1305.NonceSizeX
	out, err := aead.Open(dst, blob[:n], blob[n:], aad)
	if err != nil {
		return nil, ErrDecode
	}
	return out, nil
}

// gcm returns AES-256-GCM under key. It is used to wrap item keys under a
// cached class key, where its 80 ns open beats the alternatives; each
// wrap uses a fresh random 96-bit nonce, which is safe for well over the
// 2^32 wraps per class key a keychain could ever perform.
func gcm(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("protect: " + err.Error())
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic("protect: " + err.Error())
	}
	return a
}

func wrapGCM(a cipher.AEAD, dst, aad, key []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, a.NonceSize())...)
	nonce := dst[start:]
	if _, err := rand.Read(nonce); err != nil {
		panic("protect: crypto/rand failed: " + err.Error())
	}
	return a.Seal(dst, nonce, key, aad)
}

func unwrapGCM(a cipher.AEAD, out, aad, wrapped []byte) error {
	ns := a.NonceSize()
	if len(wrapped) != ns+len(out)+a.Overhead() {
		return ErrDecode
	}
	var buf [KeySize]byte
	pt, err := a.Open(buf[:0], wrapped[:ns], wrapped[ns:], aad)
	if err != nil || len(pt) != len(out) {
		clear(buf[:])
		return ErrDecode
	}
	copy(out, pt)
	clear(buf[:])
	return nil
}
