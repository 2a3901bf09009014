//go:build ignore

// gen writes the test certificates and keys of identity's tests. Run it
// from the identity directory: go run testdata/gen.go. Its output is
// checked in; rerunning it changes every key (tests compare against
// golden files regenerated with go test -update).
//
// DO NOT use these keys for anything but tests.
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

type atv struct {
	oid []int
	tag cbasn1.Tag
	val string
}

var (
	oidCN    = []int{2, 5, 4, 3}
	oidC     = []int{2, 5, 4, 6}
	oidO     = []int{2, 5, 4, 10}
	oidEmail = []int{1, 2, 840, 113549, 1, 9, 1}
)

// name builds a DER Name with one attribute per RDN, in the order given,
// with the string types given (Go's own encoder would reorder and choose).
func name(atvs ...atv) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, a := range atvs {
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(a.oid)
					b.AddASN1(a.tag, func(b *cryptobyte.Builder) { b.AddBytes([]byte(a.val)) })
				})
			})
		}
	})
	return b.BytesOrPanic()
}

func write(file string, typ string, der []byte) {
	f, err := os.Create(filepath.Join("testdata", file))
	if err != nil {
		panic(err)
	}
	defer f.Close()
	pem.Encode(f, &pem.Block{Type: typ, Bytes: der})
}

func writeKey(file string, k crypto.Signer) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		panic(err)
	}
	write(file, "PRIVATE KEY", der)
}

func cert(file string, tmpl *x509.Certificate, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		panic(err)
	}
	write(file, "CERTIFICATE", der)
	c, _ := x509.ParseCertificate(der)
	return c
}

func main() {
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC)

	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeKey("mouseca.key", caKey)
	ca := cert("mouseca.pem", &x509.Certificate{
		SerialNumber: big.NewInt(1), RawSubject: name(atv{oidCN, cbasn1.UTF8String, "MouseCA"}, atv{oidC, cbasn1.PrintableString, "GB"}),
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4},
	}, nil, caKey.Public(), caKey)

	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeKey("intermediate.key", interKey)
	inter := cert("intermediate.pem", &x509.Certificate{
		SerialNumber: big.NewInt(2), RawSubject: name(atv{oidCN, cbasn1.UTF8String, "Mouse Intermediate"}, atv{oidC, cbasn1.PrintableString, "GB"}),
		NotBefore: from, NotAfter: to, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, ca, interKey.Public(), caKey)

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	writeKey("leaf-rsa.key", rsaKey)
	cert("leaf-rsa.pem", &x509.Certificate{
		// A PrintableString with lower case and extra spaces, normalised by the keychain.
		SerialNumber:   new(big.Int).SetBytes([]byte{0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}), // high bit: DER adds 0x00
		RawSubject:     name(atv{oidC, cbasn1.PrintableString, "gb"}, atv{oidO, cbasn1.PrintableString, "  mouse   works  "}, atv{oidCN, cbasn1.PrintableString, "leaf rsa"}),
		EmailAddresses: []string{"Alice@Example.com"},
		NotBefore:      from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, rsaKey.Public(), caKey)

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	writeKey("leaf-p384.key", p384)
	cert("leaf-p384.pem", &x509.Certificate{
		SerialNumber: big.NewInt(384),
		RawSubject:   name(atv{oidCN, cbasn1.UTF8String, "Leaf P-384"}, atv{oidEmail, cbasn1.IA5String, "bob@example.com"}),
		NotBefore:    from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature,
	}, inter, p384.Public(), interKey)

	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	writeKey("leaf-ed25519.key", edKey)
	cert("leaf-ed25519.pem", &x509.Certificate{
		SerialNumber: big.NewInt(25519),
		RawSubject:   name(atv{oidCN, cbasn1.UTF8String, "Leaf Ed25519"}),
		NotBefore:    from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, edKey.Public(), caKey)

	shared, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeKey("shared.key", shared)
	for i, f := range []string{"shared-1.pem", "shared-2.pem"} {
		cert(f, &x509.Certificate{
			SerialNumber: big.NewInt(int64(1000 + i)),
			RawSubject:   name(atv{oidCN, cbasn1.UTF8String, "Shared key " + string(rune('1'+i))}),
			NotBefore:    from, NotAfter: to, KeyUsage: x509.KeyUsageDigitalSignature,
		}, ca, shared.Public(), caKey)
	}

	old, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	writeKey("expired.key", old)
	cert("expired.pem", &x509.Certificate{
		SerialNumber: big.NewInt(2000),
		RawSubject:   name(atv{oidCN, cbasn1.UTF8String, "Expired"}),
		NotBefore:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC),
	}, ca, old.Public(), caKey)

	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	writeKey("p521.key", p521)
}
