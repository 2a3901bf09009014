package pitfalls

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// name builds a DER Name with a UTF8String common name and, when country
// is set, a PrintableString country, in that order: CN=MouseCA, C=GB is
// the issuer of pitfalls.md section 12.
func name(cn, country string) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		rdn := func(oid []int, tag cbasn1.Tag, v string) {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oid)
					b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
				})
			})
		}
		rdn([]int{2, 5, 4, 3}, cbasn1.UTF8String, cn)
		if country != "" {
			rdn([]int{2, 5, 4, 6}, cbasn1.PrintableString, country)
		}
	})
	return b.BytesOrPanic()
}

// certificate makes a certificate for an Ed25519 key derived from the
// common name, issued by parent (self-signed when parent is nil). Ed25519
// signatures are deterministic, so the certificate's bytes are the same on
// every run and the narratives stay stable. DO NOT derive real keys this
// way.
func certificate(cn, country string, serial int64, parent *x509.Certificate, parentKey ed25519.PrivateKey) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed := sha256.Sum256([]byte("secitemdb pitfall key " + cn))
	key := ed25519.NewKeyFromSeed(seed[:])
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		RawSubject:   name(cn, country),
		NotBefore:    time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:         parent == nil, BasicConstraintsValid: true,
	}
	signer := key
	if parent == nil {
		parent = tmpl
	} else {
		signer = parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

// mouseLeaf returns a certificate issued by CN=MouseCA, C=GB, and its key.
func (s *Session) mouseLeaf(cn string) (*x509.Certificate, ed25519.PrivateKey) {
	ca, caKey, err := certificate("MouseCA", "GB", 1, nil, nil)
	s.must(err)
	leaf, key, err := certificate(cn, "", 2, ca, caKey)
	s.must(err)
	return leaf, key
}
