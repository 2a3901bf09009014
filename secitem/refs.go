package secitem

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/query"
	"github.com/secitemdb/secitemdb/schema"
)

// refClass returns the class a v_Ref value belongs to: cert for
// *x509.Certificate, keys for the supported private and public keys, idnt
// for *identity.Identity.
func refClass(v any) (string, error) {
	switch k := v.(type) {
	case *x509.Certificate:
		if k != nil {
			return ClassCertificate, nil
		}
	case *identity.Identity:
		if k != nil && k.Certificate != nil && k.PrivateKey != nil {
			return ClassIdentity, nil
		}
		return "", status.New(status.InvalidItemRef, "the identity has no certificate or no private key")
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		if _, err := identity.InspectKey(k); err != nil {
			return "", status.New(status.Param, "v_Ref is not a usable %T: %v", v, err)
		}
		return ClassKey, nil
	case *TokenKey:
		if k != nil && k.pub != nil {
			return ClassKey, nil
		}
		return "", status.New(status.InvalidItemRef, "the token key was not made by GenerateKey or CopyMatching")
	}
	return "", status.New(status.Param, "v_Ref of type %T is not supported: use *x509.Certificate, a private or public key, or *identity.Identity", v)
}

// checkRefClass resolves the class of a dictionary holding a v_Ref: the
// ref decides it, and an explicit class must agree.
func checkRefClass(d Dict) (string, error) {
	ref := d[ValueRef]
	class, err := refClass(ref)
	if err != nil {
		return "", err
	}
	if given, ok := d[Class]; ok {
		if s, _ := given.(string); s != class {
			return "", status.New(status.Param, "v_Ref is a %s item but class is %v", class, given)
		}
	}
	return class, nil
}

// merge returns d with the derived attributes added where the caller gave
// none (the caller's values win), v_Ref removed and class set.
func merge(d Dict, class string, derived identity.Attributes) Dict {
	out := make(Dict, len(d)+len(derived))
	for k, v := range derived {
		out[k] = v
	}
	for k, v := range d {
		out[k] = v
	}
	delete(out, ValueRef)
	out[Class] = class
	return out
}

// expandAddRef turns an Add's certificate or key reference into the
// attributes the device derives from it (apple-reference.md c.5, f.4,
// f.5). A certificate without a label gets its subject summary.
func expandAddRef(d Dict) (Dict, error) {
	ref, ok := d[ValueRef]
	if !ok {
		return d, nil
	}
	class, err := checkRefClass(d)
	if err != nil {
		return nil, err
	}
	var derived identity.Attributes
	switch k := ref.(type) {
	case *x509.Certificate:
		if derived, err = identity.CertificateAttributes(k); err != nil {
			return nil, status.New(status.Param, "the certificate cannot be parsed: %v", err)
		}
		derived[AttrLabel] = identity.SubjectSummary(k)
	case *TokenKey:
		return nil, status.New(status.Param, "a token key is added by GenerateKey")
	default:
		if derived, err = identity.KeyAttributes(k); err != nil {
			return nil, status.New(status.Param, "the key cannot be used: %v", err)
		}
	}
	return merge(d, class, derived), nil
}

// expandQueryRef prepares a query dictionary: an issuer given as a full
// DER Name is normalised, and a certificate or key reference becomes the
// attributes it stands for: a certificate's derived attributes, a key's
// without perm and capability flags (which the device drops), an
// identity's certificate attributes under class idnt.
func expandQueryRef(d Dict) (Dict, error) {
	d = normalizeIssuer(d)
	ref, ok := d[ValueRef]
	if !ok {
		return d, nil
	}
	class, err := checkRefClass(d)
	if err != nil {
		return nil, err
	}
	var derived identity.Attributes
	switch k := ref.(type) {
	case *x509.Certificate:
		derived, err = identity.QueryCertificateAttributes(k)
	case *identity.Identity:
		derived, err = identity.QueryCertificateAttributes(k.Certificate)
	case *TokenKey:
		derived = identity.Attributes{AttrApplicationLabel: k.label(), AttrKeyClass: int64(identity.KeyClassPrivate)}
	default:
		derived, err = identity.QueryKeyAttributes(k)
	}
	if err != nil {
		return nil, status.New(status.Param, "v_Ref cannot be used: %v", err)
	}
	return merge(d, class, derived), nil
}

// normalizeIssuer rewrites a query's issr given as a full DER Name (it
// starts with the SEQUENCE tag) into the normalised contents the keychain
// stores, as the device's client does; contents pass unchanged
// (apple-reference.md f.4).
func normalizeIssuer(d Dict) Dict {
	b, ok := d[AttrIssuer].([]byte)
	if !ok || len(b) == 0 || b[0] != 0x30 {
		return d
	}
	n, err := identity.NormalizeName(b)
	if err != nil {
		return d // compared as given; it will match nothing normalised
	}
	out := make(Dict, len(d))
	for k, v := range d {
		out[k] = v
	}
	out[AttrIssuer] = n
	return out
}

// makeRef builds the Go object r_Ref returns for a stored item: the
// *x509.Certificate of a certificate, a crypto.Signer for a private key,
// the public key of a public key, nil for passwords (as on the device) and
// for items whose data does not parse.
func (c *Client) makeRef(cls *schema.Class, attrs, secret schema.Fields, pref []byte) any {
	data, _ := secret.Get(ValueData)
	switch cls {
	case schema.Certificate:
		cert, err := x509.ParseCertificate(data.Data)
		if err != nil {
			return nil
		}
		return cert
	case schema.Key:
		kcls, _ := attrs.Get(AttrKeyClass)
		typ, _ := attrs.Get(AttrKeyType)
		if tkid, _ := attrs.Get(AttrTokenID); tkid.Str == protect.TokenIDSecureEnclave {
			return c.tokenKey(data.Data, pref)
		}
		k, err := identity.ParseKey(typ.Num, kcls.Num == identity.KeyClassPrivate, data.Data)
		if err != nil {
			return nil
		}
		return k
	}
	return nil
}

// wantsSecret reports whether a search must decrypt secrets: for r_Data,
// for r_Ref (objects are rebuilt from their data) and for certificate
// match keys (which need the parsed certificate).
func wantsSecret(p *query.Plan) bool {
	m := p.Match
	return p.Return.Has(query.ReturnData) || p.Return.Has(query.ReturnRef) ||
		m.Issuers != nil || m.ValidOnDate != nil || m.Email != nil
}
