package identity

import (
	"bytes"
	"crypto/x509"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/secitemdb/secitemdb/internal/fuzzcorpus"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the fuzz seed corpora")

// FuzzCertificate: any DER the standard library parses as a certificate
// yields attributes without panicking, with a normalised issuer that
// normalises to itself.
func FuzzCertificate(f *testing.F) {
	if *writeCorpus {
		var seeds [][]any
		files, _ := filepath.Glob("testdata/*.pem")
		for _, file := range files {
			c := loadCertFile(f, file)
			seeds = append(seeds, []any{c.Raw})
		}
		fuzzcorpus.Write(".", "FuzzCertificate", seeds...)
	}
	fuzzcorpus.Require(f, "FuzzCertificate")
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		a, err := CertificateAttributes(c)
		if err != nil {
			return
		}
		issr := a["issr"].([]byte)
		again, err := NormalizeName(issr)
		if err != nil || !bytes.Equal(again, issr) {
			t.Fatalf("normalising twice changed the issuer: %x -> %x (%v)", issr, again, err)
		}
		_ = SubjectSummary(c)
		_ = EmailAddresses(c)
	})
}

// FuzzNormalizeName: never panics; normalising is idempotent.
func FuzzNormalizeName(f *testing.F) {
	if *writeCorpus {
		fuzzcorpus.Write(".", "FuzzNormalizeName",
			[]any{[]byte("\x30\x1f\x31\x10\x30\x0e\x06\x03\x55\x04\x03\x0c\x07MouseCA\x31\x0b\x30\x09\x06\x03\x55\x04\x06\x13\x02GB")},
			[]any{[]byte("\x31\x0d\x30\x0b\x06\x03\x55\x04\x03\x13\x04 a  b")}, []any{[]byte{}})
	}
	fuzzcorpus.Require(f, "FuzzNormalizeName")
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := NormalizeName(b)
		if err != nil {
			return
		}
		n2, err := NormalizeName(n)
		if err != nil || !bytes.Equal(n, n2) {
			t.Fatalf("not idempotent: %x -> %x -> %x", b, n, n2)
		}
	})
}

// FuzzParseKey: a stored key representation never panics the parser; EC
// and Ed25519 keys that parse re-encode to the same bytes.
func FuzzParseKey(f *testing.F) {
	if *writeCorpus {
		var seeds [][]any
		for _, file := range []string{"leaf-rsa", "leaf-p384", "leaf-ed25519", "p521"} {
			info, _ := InspectKey(loadKeyFile(f, "testdata/"+file+".key"))
			seeds = append(seeds, []any{info.Type, true, info.External})
			pub, _ := InspectKey(loadKeyFile(f, "testdata/"+file+".key").Public())
			seeds = append(seeds, []any{pub.Type, false, pub.External})
		}
		fuzzcorpus.Write(".", "FuzzParseKey", seeds...)
	}
	fuzzcorpus.Require(f, "FuzzParseKey")
	f.Fuzz(func(t *testing.T, typ int64, private bool, data []byte) {
		k, err := ParseKey(typ, private, data)
		if err != nil {
			return
		}
		info, err := InspectKey(k)
		if err != nil {
			t.Fatalf("a parsed key cannot be inspected: %v", err)
		}
		if typ != KeyTypeRSA && !bytes.Equal(info.External, data) {
			t.Fatalf("type %d round trip: %x -> %x", typ, data, info.External)
		}
	})
}

func loadCertFile(f *testing.F, file string) *x509.Certificate {
	b, _ := os.ReadFile(file)
	c, err := x509.ParseCertificate(pemBytes(b))
	if err != nil {
		f.Fatal(err)
	}
	return c
}
