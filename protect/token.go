package protect

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// TokenIDSecureEnclave is the tkid of keys protected by the (emulated)
// Secure Enclave.
const TokenIDSecureEnclave = "com.apple.setoken"

// ErrTokenUnavailable is returned when a token key cannot be unwrapped:
// the enclave secret was erased, or belongs to another device.
var ErrTokenUnavailable = errors.New("protect: token key is not usable on this device")

const (
	tokenMagic    = "SETK"
	tokenVersion  = 1
	tokenKEKLabel = "secitemdb v1 secure enclave"
)

// SealToken wraps a token key's private bytes for storage as the item's
// v_Data: the result is an opaque handle holding the public key in clear
// and the private bytes sealed under a key derived from both the enclave
// secret and the device secret (and bound to the store and the public
// key). The keychain item around it is sealed under its class key as
// usual, so using the key needs the class key, the device and the enclave.
func SealToken(enclave, device Device, storeID [StoreIDSize]byte, pub, priv []byte) ([]byte, error) {
	if len(pub) > 255 {
		return nil, errors.New("protect: token public key too long")
	}
	kek, err := tokenKEK(enclave, device, storeID)
	if err != nil {
		return nil, err
	}
	defer clear(kek)
	a, _ := chacha20poly1305.NewX(kek)
	h := append([]byte(tokenMagic), tokenVersion, byte(len(pub)))
	h = append(h, pub...)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	mustRand(nonce)
	h = append(h, nonce...)
	return a.Seal(h, nonce, priv, tokenAAD(storeID, pub)), nil
}

// TokenPublic returns the public key bytes of a handle made by SealToken,
// and false when b is not such a handle.
func TokenPublic(b []byte) ([]byte, bool) {
	if len(b) < 6 || string(b[:4]) != tokenMagic || b[4] != tokenVersion {
		return nil, false
	}
	n := int(b[5])
	if len(b) < 6+n+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, false
	}
	return bytes.Clone(b[6 : 6+n]), true
}

// OpenToken unwraps a handle's private bytes. The caller wipes them after
// use. Any failure is ErrTokenUnavailable.
func OpenToken(enclave, device Device, storeID [StoreIDSize]byte, handle []byte) ([]byte, error) {
	pub, ok := TokenPublic(handle)
	if !ok {
		return nil, ErrTokenUnavailable
	}
	kek, err := tokenKEK(enclave, device, storeID)
	if err != nil {
		return nil, ErrTokenUnavailable
	}
	defer clear(kek)
	a, _ := chacha20poly1305.NewX(kek)
	rest := handle[6+len(pub):]
	priv, err := a.Open(nil, rest[:chacha20poly1305.NonceSizeX], rest[chacha20poly1305.NonceSizeX:], tokenAAD(storeID, pub))
	if err != nil {
		return nil, ErrTokenUnavailable
	}
	return priv, nil
}

func tokenAAD(storeID [StoreIDSize]byte, pub []byte) []byte {
	aad := append([]byte(tokenMagic), storeID[:]...)
	return append(aad, pub...)
}

func tokenKEK(enclave, device Device, storeID [StoreIDSize]byte) ([]byte, error) {
	es, err := enclave.Secret()
	if err != nil {
		return nil, err
	}
	defer clear(es)
	ds, err := device.Secret()
	if err != nil {
		return nil, err
	}
	defer clear(ds)
	ikm := append(append(make([]byte, 0, len(es)+len(ds)), es...), ds...)
	defer clear(ikm)
	return hkdf.Key(sha256.New, ikm, storeID[:], tokenKEKLabel, KeySize)
}
