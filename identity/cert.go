// Package identity is the keychain's view of certificates and keys as Go
// values: the attributes a certificate or key gets when it is added by
// reference (apple-reference.md f.4, f.5), Apple's key representations,
// X.501 name normalisation, and the Identity type (a certificate and the
// private key whose public key it certifies).
//
// It does no storage: the public package stores what this package
// derives.
package identity

import (
	"crypto"
	"crypto/sha1"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"errors"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Identity is a certificate and its private key. The keychain never stores
// an identity as such: it stores the two halves, and an identity exists
// whenever a certificate's pkhh equals a private key's klbl.
type Identity struct {
	Certificate *x509.Certificate
	PrivateKey  crypto.Signer
}

// CertificateAttributes returns the attributes a certificate gets when it
// is added by reference (apple-reference.md f.4): ctyp (the X.509 version,
// 1-3), cenc (3, DER), subj and issr (normalised Name contents, see
// NormalizeName), slnr (the serial INTEGER's content bytes as encoded),
// skid (when the extension is present), pkhh (SHA-1 of the public key bits)
// and v_Data (the DER). The label is not derived here; see SubjectSummary.
func CertificateAttributes(cert *x509.Certificate) (Attributes, error) {
	a, err := QueryCertificateAttributes(cert)
	if err != nil {
		return nil, err
	}
	a["v_Data"] = append([]byte{}, cert.Raw...)
	return a, nil
}

// QueryCertificateAttributes is CertificateAttributes without v_Data: what
// a certificate reference stands for in a query.
func QueryCertificateAttributes(cert *x509.Certificate) (Attributes, error) {
	if cert == nil || len(cert.Raw) == 0 {
		return nil, errors.New("identity: certificate has no DER")
	}
	subj, err := NormalizeName(cert.RawSubject)
	if err != nil {
		return nil, err
	}
	issr, err := NormalizeName(cert.RawIssuer)
	if err != nil {
		return nil, err
	}
	serial, err := SerialBytes(cert)
	if err != nil {
		return nil, err
	}
	pkhh, err := PublicKeyHash(cert)
	if err != nil {
		return nil, err
	}
	a := Attributes{
		"ctyp": int64(cert.Version),
		"cenc": int64(3),
		"subj": subj,
		"issr": issr,
		"slnr": serial,
		"pkhh": pkhh,
	}
	if len(cert.SubjectKeyId) > 0 {
		a["skid"] = append([]byte{}, cert.SubjectKeyId...)
	}
	return a, nil
}

// SerialBytes returns the content bytes of the certificate's serialNumber
// INTEGER exactly as encoded (a leading 0x00 included).
func SerialBytes(cert *x509.Certificate) ([]byte, error) {
	tbs := cryptobyte.String(cert.RawTBSCertificate)
	var body, serial cryptobyte.String
	if !tbs.ReadASN1(&body, cbasn1.SEQUENCE) ||
		!body.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!body.ReadASN1(&serial, cbasn1.INTEGER) {
		return nil, errors.New("identity: malformed TBSCertificate")
	}
	return append([]byte{}, serial...), nil
}

// PublicKeyHash returns pkhh: SHA-1 of the subjectPublicKey BIT STRING's
// contents (the raw public key bytes), which equals the klbl of the
// matching key.
func PublicKeyHash(cert *x509.Certificate) ([]byte, error) {
	spki := cryptobyte.String(cert.RawSubjectPublicKeyInfo)
	var body cryptobyte.String
	var bits encasn1.BitString
	if !spki.ReadASN1(&body, cbasn1.SEQUENCE) ||
		!body.SkipASN1(cbasn1.SEQUENCE) ||
		!body.ReadASN1BitString(&bits) {
		return nil, errors.New("identity: malformed SubjectPublicKeyInfo")
	}
	sum := sha1.Sum(bits.RightAlign())
	return sum[:], nil
}

// SubjectSummary is the label a certificate added without one gets: its
// subject's common name, else its first e-mail address, else its first
// organizational unit or organization, else the whole subject.
func SubjectSummary(cert *x509.Certificate) string {
	s := cert.Subject
	switch {
	case s.CommonName != "":
		return s.CommonName
	case len(EmailAddresses(cert)) > 0:
		return EmailAddresses(cert)[0]
	case len(s.OrganizationalUnit) > 0:
		return s.OrganizationalUnit[0]
	case len(s.Organization) > 0:
		return s.Organization[0]
	}
	return s.String()
}

// oidEmailAddress is PKCS #9 emailAddress, found in older subjects.
var oidEmailAddress = []int{1, 2, 840, 113549, 1, 9, 1}

// EmailAddresses returns the certificate's e-mail addresses: those of the
// subject alternative name, then any PKCS #9 emailAddress of the subject.
func EmailAddresses(cert *x509.Certificate) []string {
	out := append([]string(nil), cert.EmailAddresses...)
	for _, atv := range cert.Subject.Names {
		if atv.Type.Equal(oidEmailAddress) {
			if s, ok := atv.Value.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// HasEmail reports whether one of the certificate's e-mail addresses
// equals addr, ignoring case (kSecMatchEmailAddressIfPresent).
func HasEmail(cert *x509.Certificate, addr string) bool {
	for _, e := range EmailAddresses(cert) {
		if strings.EqualFold(e, addr) {
			return true
		}
	}
	return false
}

// ValidOn reports whether t lies in the certificate's validity period
// (kSecMatchValidOnDate).
func ValidOn(cert *x509.Certificate, t time.Time) bool {
	return !t.Before(cert.NotBefore) && !t.After(cert.NotAfter)
}

// Pairs reports whether key is the private key of cert's public key.
func Pairs(cert *x509.Certificate, key crypto.Signer) bool {
	pkhh, err := PublicKeyHash(cert)
	if err != nil {
		return false
	}
	info, err := InspectKey(key.Public())
	if err != nil {
		return false
	}
	sum := sha1.Sum(info.PublicBytes)
	return string(sum[:]) == string(pkhh)
}
