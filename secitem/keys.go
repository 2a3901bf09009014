package secitem

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/query"
	"github.com/secitemdb/secitemdb/schema"
)

// Keys of the GenerateKey parameters that are not attributes.
const (
	PrivateKeyAttrs = "private" // kSecPrivateKeyAttrs: attributes of the private key
	PublicKeyAttrs  = "public"  // kSecPublicKeyAttrs: attributes of the public key
)

const opGenerate = "SecKeyCreateRandomKey"

// cryptoSigner is crypto.Signer; named to keep signatures short.
type cryptoSigner = crypto.Signer

// TokenKey is a private key protected by the emulated Secure Enclave
// (tkid "com.apple.setoken"): its private bytes never leave the store in
// usable form. It signs through the keychain (so its item's protection
// class applies: while locked, Sign fails with ErrInteractionNotAllowed)
// and through the enclave secret (once that is erased, Sign fails with
// ErrDecode for good, while the item stays listed). It cannot be exported:
// r_Data returns an opaque handle and x509.MarshalPKCS8PrivateKey refuses
// it. Its String method prints no key material.
type TokenKey struct {
	c      *Client
	pub    *ecdsa.PublicKey
	pref   []byte // the stored item, or nil for a key that is not permanent
	handle []byte // the opaque handle of a key that is not permanent
}

var _ crypto.Signer = (*TokenKey)(nil)

// Public returns the key's *ecdsa.PublicKey.
func (k *TokenKey) Public() crypto.PublicKey { return k.pub }

// String describes the key by its application label.
func (k *TokenKey) String() string { return fmt.Sprintf("TokenKey(klbl %x)", k.label()) }

func (k *TokenKey) label() []byte {
	pub, _ := k.pub.Bytes()
	sum := sha1.Sum(pub)
	return sum[:]
}

// Sign signs digest with the enclave-protected key (ECDSA, ASN.1 form).
func (k *TokenKey) Sign(rnd io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	handle := k.handle
	if handle == nil {
		data, err := k.c.CopyMatching(Dict{ValuePersistentRef: k.pref, ReturnData: true})
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, &Error{Op: "SecKeyCreateSignature", Status: e.Status, Detail: e.Detail}
			}
			return nil, err
		}
		handle = data.([]byte)
	}
	db := k.c.db
	d, err := protect.OpenToken(db.enclave, db.st.Device(), db.st.StoreID(), handle)
	if err != nil {
		return nil, newErr("SecKeyCreateSignature", ErrDecode, "the Secure Enclave cannot unwrap this key: its secret was erased or belongs to another device")
	}
	defer clear(d)
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		return nil, newErr("SecKeyCreateSignature", ErrDecode, "the token key does not decode")
	}
	return priv.Sign(rnd, digest, opts)
}

// tokenKey rebuilds the TokenKey of a stored item from its handle.
func (c *Client) tokenKey(handle, pref []byte) *TokenKey {
	pub, ok := protect.TokenPublic(handle)
	if !ok {
		return nil
	}
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
	if err != nil {
		return nil
	}
	return &TokenKey{c: c, pub: pk, pref: append([]byte(nil), pref...)}
}

// GenerateKey is the default caller's GenerateKey.
func (db *DB) GenerateKey(params Dict) (crypto.Signer, error) { return db.def.GenerateKey(params) }

// GenerateKey creates a private key, like SecKeyCreateRandomKey. params
// holds AttrKeyType (KeyTypeRSA, KeyTypeECSECPrimeRandom, KeyTypeEd25519),
// optionally AttrKeySizeInBits (RSA 2048-8192, default 2048; EC 256, 384
// or 521, default 256; Ed25519 256), AttrTokenID (TokenIDSecureEnclave for
// a Secure Enclave key: EC 256 only), and attributes for the stored items:
// at the top level for both keys, under PrivateKeyAttrs and PublicKeyAttrs
// for one of them. With AttrIsPermanent true (at the top or under
// PrivateKeyAttrs) the private key is added to the keychain with the
// attributes a key added by reference gets; the public key is added only
// when PublicKeyAttrs says AttrIsPermanent too.
//
// The result is the Go private key (*rsa.PrivateKey, *ecdsa.PrivateKey,
// ed25519.PrivateKey) for a software key, and a *TokenKey for a Secure
// Enclave key.
func (c *Client) GenerateKey(params Dict) (key crypto.Signer, err error) {
	tr := c.db.startTrace(opGenerate, params)
	defer func() { tr.end(key, err) }()
	leave, err := c.db.enter()
	if err != nil {
		return nil, wrapErr(opGenerate, err)
	}
	defer leave()
	key, err = c.generateKey(params)
	return key, wrapErr(opGenerate, err)
}

func (c *Client) generateKey(params Dict) (crypto.Signer, error) {
	typ, err := number(params, AttrKeyType, -1)
	if err != nil {
		return nil, err
	}
	defBits := map[int64]int64{identity.KeyTypeRSA: 2048, identity.KeyTypeEC: 256, identity.KeyTypeEd25519: 256}[typ]
	if defBits == 0 {
		return nil, status.New(status.Param, "type must be KeyTypeRSA, KeyTypeECSECPrimeRandom or KeyTypeEd25519")
	}
	bits, err := number(params, AttrKeySizeInBits, defBits)
	if err != nil {
		return nil, err
	}
	tkid, _ := params[AttrTokenID].(string)
	token := tkid == protect.TokenIDSecureEnclave
	if _, ok := params[AttrTokenID]; ok && !token {
		return nil, status.New(status.Param, "the only token secitemdb emulates is %q", protect.TokenIDSecureEnclave)
	}
	if token && (typ != identity.KeyTypeEC || bits != 256) {
		return nil, status.New(status.Param, "the Secure Enclave holds only 256-bit EC keys")
	}
	common, privAttrs, pubAttrs := Dict{}, Dict{}, Dict{}
	for k, v := range params {
		switch k {
		case AttrKeyType, AttrKeySizeInBits:
		case PrivateKeyAttrs, PublicKeyAttrs:
			sub, ok := asDict(v)
			if !ok {
				return nil, status.New(status.Param, "%s must be a dictionary", k)
			}
			if k == PrivateKeyAttrs {
				privAttrs = sub
			} else {
				pubAttrs = sub
			}
		default:
			common[k] = v
		}
	}

	var priv crypto.Signer
	switch typ {
	case identity.KeyTypeRSA:
		if bits < 2048 || bits > 8192 || bits%8 != 0 {
			return nil, status.New(status.Param, "RSA keys have 2048 to 8192 bits, a multiple of 8")
		}
		priv, err = rsa.GenerateKey(rand.Reader, int(bits))
	case identity.KeyTypeEC:
		curve, ok := identity.ECCurve(bits)
		if !ok {
			return nil, status.New(status.Param, "EC keys have 256, 384 or 521 bits")
		}
		priv, err = ecdsa.GenerateKey(curve, rand.Reader)
	case identity.KeyTypeEd25519:
		if bits != 256 {
			return nil, status.New(status.Param, "Ed25519 keys have 256 bits")
		}
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, status.New(status.Param, "key generation failed: %v", err)
	}
	info, err := identity.InspectKey(priv)
	if err != nil {
		return nil, err
	}
	derived := info.Attributes()
	var result crypto.Signer = priv
	var handle []byte
	if token {
		ec := priv.(*ecdsa.PrivateKey)
		d, _ := ec.Bytes()
		handle, err = protect.SealToken(c.db.enclave, c.db.st.Device(), c.db.st.StoreID(), info.PublicBytes, d)
		clear(d)
		if err != nil {
			return nil, status.New(status.NotAvailable, "the Secure Enclave is not available: %v", err)
		}
		derived[ValueData] = handle
		derived[AttrTokenID] = protect.TokenIDSecureEnclave
		for code, v := range map[string]int64{"sens": 1, "asen": 1, "extr": 0, "next": 1} {
			derived[code] = v
		}
		result = &TokenKey{c: c, pub: &ec.PublicKey, handle: handle}
	}

	permanent := truthy(common[AttrIsPermanent]) || truthy(privAttrs[AttrIsPermanent])
	if permanent {
		d := Dict{}
		for k, v := range derived {
			d[k] = v
		}
		for _, src := range []Dict{common, privAttrs} {
			for k, v := range src {
				d[k] = v
			}
		}
		d[Class] = ClassKey
		d[ReturnPersistentRef] = true
		pref, err := c.add(d)
		if err != nil {
			return nil, err
		}
		if tk, ok := result.(*TokenKey); ok {
			tk.pref, tk.handle = pref.([]byte), nil
		}
	}
	if truthy(pubAttrs[AttrIsPermanent]) {
		pubDerived, _ := identity.KeyAttributes(priv.Public())
		d := Dict{}
		for k, v := range pubDerived {
			d[k] = v
		}
		for _, src := range []Dict{common, pubAttrs} {
			for k, v := range src {
				if k != AttrTokenID {
					d[k] = v
				}
			}
		}
		d[Class] = ClassKey
		if _, err := c.add(d); err != nil {
			return nil, err
		}
	}
	return result, nil
}

func asDict(v any) (Dict, bool) {
	switch d := v.(type) {
	case Dict:
		return d, true
	case map[string]any:
		return Dict(d), true
	}
	return nil, false
}

func truthy(v any) bool {
	if v == nil {
		return false
	}
	n, err := query.Convert(schema.Key.Attr(AttrIsPermanent), v)
	return err == nil && n.T == schema.TNumber && n.Num != 0
}

// number reads an integer parameter (an integer or a numeric string, as
// the device's CFNumber conversion accepts); def < 0 means required.
func number(params Dict, code string, def int64) (int64, error) {
	v, ok := params[code]
	if !ok {
		if def < 0 {
			return 0, status.New(status.Param, "%s is required", code)
		}
		return def, nil
	}
	n, err := query.Convert(schema.Key.Attr(code), v)
	if err != nil || n.T != schema.TNumber {
		return 0, status.New(status.Param, "%s must be a number", code)
	}
	return n.Num, nil
}
