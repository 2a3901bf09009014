package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"errors"
	"fmt"
)

// Key types: the values of kSecAttrKeyType, stored as numbers.
const (
	KeyTypeRSA     = 42
	KeyTypeEC      = 73
	KeyTypeEd25519 = 105
)

// Key classes: the values of kSecAttrKeyClass, stored as numbers.
const (
	KeyClassPublic  = 0
	KeyClassPrivate = 1
)

// ErrUnsupportedKey is returned for key types the keychain does not hold.
var ErrUnsupportedKey = errors.New("identity: unsupported key type")

// Attributes are derived attribute values keyed by four-character code,
// in the Go types the keychain API accepts (int64, []byte, string).
type Attributes map[string]any

// KeyInfo describes a private or public key: its type, size, public key
// bytes and Apple's external representation of it.
type KeyInfo struct {
	Type    int64 // KeyTypeRSA, KeyTypeEC or KeyTypeEd25519
	Bits    int64 // key size in bits (modulus, curve or 256)
	Private bool
	// PublicBytes is what SecKeyCopyPublicBytes returns: PKCS#1
	// RSAPublicKey DER for RSA, the uncompressed point for EC, the 32
	// bytes for Ed25519. Its SHA-1 is the key's klbl and its
	// certificate's pkhh.
	PublicBytes []byte
	// External is SecKeyCopyExternalRepresentation: for private keys
	// PKCS#1 RSAPrivateKey DER, the uncompressed point followed by the
	// scalar (X9.63) for EC, the 32-byte seed for Ed25519; for public
	// keys PublicBytes.
	External []byte
}

// InspectKey returns what the keychain knows of a private key
// (*rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey) or a public key
// (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey).
func InspectKey(key any) (*KeyInfo, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k == nil || k.D == nil || len(k.Primes) < 2 {
			return nil, ErrUnsupportedKey
		}
		info, err := InspectKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		info.Private = true
		info.External = x509.MarshalPKCS1PrivateKey(k)
		return info, nil
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return nil, ErrUnsupportedKey
		}
		pub := x509.MarshalPKCS1PublicKey(k)
		return &KeyInfo{Type: KeyTypeRSA, Bits: int64(k.N.BitLen()), PublicBytes: pub, External: pub}, nil
	case *ecdsa.PrivateKey:
		if k == nil || k.D == nil {
			return nil, ErrUnsupportedKey
		}
		info, err := InspectKey(&k.PublicKey)
		if err != nil {
			return nil, err
		}
		d, err := k.Bytes()
		if err != nil {
			return nil, ErrUnsupportedKey
		}
		info.Private = true
		info.External = append(append([]byte{}, info.PublicBytes...), d...)
		return info, nil
	case *ecdsa.PublicKey:
		if k == nil || k.Curve == nil {
			return nil, ErrUnsupportedKey
		}
		pub, err := k.Bytes()
		if err != nil {
			return nil, ErrUnsupportedKey
		}
		return &KeyInfo{Type: KeyTypeEC, Bits: int64(k.Curve.Params().BitSize), PublicBytes: pub, External: pub}, nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, ErrUnsupportedKey
		}
		pub := []byte(k.Public().(ed25519.PublicKey))
		return &KeyInfo{Type: KeyTypeEd25519, Bits: 256, Private: true, PublicBytes: pub, External: append([]byte{}, k.Seed()...)}, nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, ErrUnsupportedKey
		}
		pub := append([]byte{}, k...)
		return &KeyInfo{Type: KeyTypeEd25519, Bits: 256, PublicBytes: pub, External: pub}, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
}

// KeyAttributes returns the attributes a key gets when it is added by
// reference (apple-reference.md f.5): kcls, klbl (SHA-1 of the public key
// bytes), type, bsiz, esiz, the permanence and capability flags, and
// v_Data (the external representation).
func KeyAttributes(key any) (Attributes, error) {
	info, err := InspectKey(key)
	if err != nil {
		return nil, err
	}
	return info.Attributes(), nil
}

// Attributes returns the key's derived attributes (see KeyAttributes).
func (info *KeyInfo) Attributes() Attributes {
	klbl := sha1.Sum(info.PublicBytes)
	priv := info.Private
	b := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	kcls := int64(KeyClassPublic)
	if priv {
		kcls = KeyClassPrivate
	}
	return Attributes{
		"kcls": kcls,
		"klbl": klbl[:],
		"type": info.Type,
		"bsiz": info.Bits,
		"esiz": info.Bits,
		"perm": int64(1), "priv": int64(1), "modi": int64(1),
		"sens": int64(0), "asen": int64(0),
		"extr": int64(1), "next": int64(0),
		"encr": b(!priv), "decr": b(priv),
		"drve": b(priv),
		"sign": b(priv), "vrfy": b(!priv),
		"snrc": int64(0), "vyrc": int64(0),
		"wrap": b(!priv), "unwp": b(priv),
		"v_Data": append([]byte{}, info.External...),
	}
}

// QueryKeyAttributes returns the attributes a key reference stands for in
// a query: KeyAttributes without perm, the capability flags and v_Data,
// which the device drops before searching.
func QueryKeyAttributes(key any) (Attributes, error) {
	a, err := KeyAttributes(key)
	if err != nil {
		return nil, err
	}
	for _, code := range []string{"perm", "encr", "decr", "drve", "sign", "vrfy", "snrc", "vyrc", "wrap", "unwp", "v_Data"} {
		delete(a, code)
	}
	return a, nil
}

// ParseKey rebuilds a key from its keychain form: the key type, whether it
// is private, and its external representation (see KeyInfo). Private keys
// come back as crypto.Signer, public keys as *rsa.PublicKey,
// *ecdsa.PublicKey or ed25519.PublicKey.
func ParseKey(keyType int64, private bool, data []byte) (crypto.PublicKey, error) {
	switch keyType {
	case KeyTypeRSA:
		if private {
			return x509.ParsePKCS1PrivateKey(data)
		}
		return x509.ParsePKCS1PublicKey(data)
	case KeyTypeEC:
		curve, n := curveForPoint(data, private)
		if curve == nil {
			return nil, fmt.Errorf("identity: EC key data of %d bytes fits no curve", len(data))
		}
		if private {
			k, err := ecdsa.ParseRawPrivateKey(curve, data[n:])
			if err != nil {
				return nil, err
			}
			// The public point given must be the one the scalar makes:
			// a key whose halves disagree is refused, not repaired.
			if pub, err := k.PublicKey.Bytes(); err != nil || !bytes.Equal(pub, data[:n]) {
				return nil, errors.New("identity: the EC public point does not match the private scalar")
			}
			return k, nil
		}
		return ecdsa.ParseUncompressedPublicKey(curve, data)
	case KeyTypeEd25519:
		if private {
			if len(data) != ed25519.SeedSize {
				return nil, errors.New("identity: Ed25519 private key data must be 32 bytes")
			}
			return ed25519.NewKeyFromSeed(data), nil
		}
		if len(data) != ed25519.PublicKeySize {
			return nil, errors.New("identity: Ed25519 public key data must be 32 bytes")
		}
		return ed25519.PublicKey(append([]byte{}, data...)), nil
	}
	return nil, fmt.Errorf("%w: type %d", ErrUnsupportedKey, keyType)
}

// curveForPoint finds the curve of an X9.63 public point (04‖X‖Y) or
// private key (04‖X‖Y‖D) by its length, and returns the point's length.
func curveForPoint(data []byte, private bool) (elliptic.Curve, int) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		size := (c.Params().BitSize + 7) / 8
		point := 1 + 2*size
		want := point
		if private {
			want += size
		}
		if len(data) == want && data[0] == 4 {
			return c, point
		}
	}
	return nil, 0
}

// ECCurve returns the NIST curve of the given size (256, 384 or 521).
func ECCurve(bits int64) (elliptic.Curve, bool) {
	switch bits {
	case 256:
		return elliptic.P256(), true
	case 384:
		return elliptic.P384(), true
	case 521:
		return elliptic.P521(), true
	}
	return nil, false
}
