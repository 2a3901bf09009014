package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func readPEM(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	return blk.Bytes
}

func loadCert(t *testing.T, file string) *x509.Certificate {
	c, err := x509.ParseCertificate(readPEM(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadKey(t *testing.T, file string) crypto.Signer {
	k, err := x509.ParsePKCS8PrivateKey(readPEM(t, file))
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

// golden compares attrs with testdata/golden/<name>.json (bytes as hex).
func golden(t *testing.T, name string, attrs Attributes) {
	t.Helper()
	shown := map[string]string{}
	for k, v := range attrs {
		switch x := v.(type) {
		case []byte:
			if k == "v_Data" {
				sum := sha1.Sum(x)
				shown[k] = fmt.Sprintf("sha1:%x (%d bytes)", sum, len(x))
			} else {
				shown[k] = hex.EncodeToString(x)
			}
		default:
			shown[k] = fmt.Sprint(x)
		}
	}
	got, _ := json.MarshalIndent(shown, "", "  ")
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, append(got, '\n'), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
		t.Errorf("%s differs from its golden file:\n got %s\nwant %s", name, got, want)
	}
}

// The issuer bytes of pitfalls.md section 12.
func TestMouseCAIssuer(t *testing.T) {
	ca := loadCert(t, "mouseca.pem")
	a, err := CertificateAttributes(ca)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hex.DecodeString("3110300e06035504030c074d6f75736543413" + "10b3009060355040613024742")
	if !bytes.Equal(a["issr"].([]byte), want) {
		t.Fatalf("issr = %x, want %x", a["issr"], want)
	}
	if !bytes.Equal(a["subj"].([]byte), want) {
		t.Fatalf("a self-signed certificate's subj is its issr")
	}
	full, _ := hex.DecodeString("301f" + hex.EncodeToString(want))
	if !bytes.Equal(ca.RawIssuer, full) {
		t.Fatalf("the full DER Name is %x, want %x", ca.RawIssuer, full)
	}
	// A raw DER Name and its normalised contents normalise alike.
	n1, _ := NormalizeName(ca.RawIssuer)
	n2, _ := NormalizeName(want)
	if !bytes.Equal(n1, want) || !bytes.Equal(n2, want) {
		t.Fatal("NormalizeName")
	}
}

func TestCertificateGoldens(t *testing.T) {
	for _, f := range []string{"mouseca", "intermediate", "leaf-rsa", "leaf-p384", "leaf-ed25519", "shared-1", "shared-2", "expired"} {
		t.Run(f, func(t *testing.T) {
			c := loadCert(t, f+".pem")
			a, err := CertificateAttributes(c)
			if err != nil {
				t.Fatal(err)
			}
			// The label a certificate added without one gets is part of
			// its golden record too.
			a["labl"] = SubjectSummary(c)
			golden(t, "cert-"+f, a)
			if a["ctyp"] != int64(3) || a["cenc"] != int64(3) {
				t.Errorf("ctyp %v cenc %v", a["ctyp"], a["cenc"])
			}
			// pkhh is the SHA-1 of the public key bytes, independently.
			info, err := InspectKey(c.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if sum := sha1.Sum(info.PublicBytes); !bytes.Equal(a["pkhh"].([]byte), sum[:]) {
				t.Errorf("pkhh %x, want SHA-1 of the public key %x", a["pkhh"], sum)
			}
		})
	}
}

func TestNameNormalisation(t *testing.T) {
	c := loadCert(t, "leaf-rsa.pem")
	a, _ := CertificateAttributes(c)
	subj := a["subj"].([]byte)
	for _, s := range []string{"GB", "MOUSE WORKS", "LEAF RSA"} {
		if !bytes.Contains(subj, []byte(s)) {
			t.Errorf("normalised subject %q lacks %q", subj, s)
		}
	}
	if bytes.Contains(subj, []byte("  ")) || bytes.Contains(subj, []byte("mouse")) {
		t.Errorf("subject not normalised: %q", subj)
	}
	// UTF8String values are copied unchanged.
	ca, _ := CertificateAttributes(loadCert(t, "mouseca.pem"))
	if !bytes.Contains(ca["subj"].([]byte), []byte("MouseCA")) {
		t.Error("a UTF8String was changed")
	}
	if _, err := NormalizeName([]byte{0x30, 0x05, 1, 2}); err == nil {
		t.Error("malformed name accepted")
	}
	if n, err := NormalizeName(nil); err != nil || len(n) != 0 {
		t.Error("an empty name normalises to empty contents")
	}
}

func TestSerialKeepsLeadingZero(t *testing.T) {
	a, _ := CertificateAttributes(loadCert(t, "leaf-rsa.pem"))
	if got := hex.EncodeToString(a["slnr"].([]byte)); got != "008001020304050607" {
		t.Fatalf("slnr = %s", got)
	}
}

func TestKeyGoldens(t *testing.T) {
	for _, f := range []string{"leaf-rsa", "leaf-p384", "leaf-ed25519", "shared", "p521"} {
		t.Run(f, func(t *testing.T) {
			k := loadKey(t, f+".key")
			priv, err := KeyAttributes(k)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "key-"+f+"-private", priv)
			pub, err := KeyAttributes(k.Public())
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "key-"+f+"-public", pub)
			if !bytes.Equal(priv["klbl"].([]byte), pub["klbl"].([]byte)) {
				t.Error("private and public key have different klbl")
			}
			for code, want := range map[string][2]int64{
				"kcls": {1, 0}, "encr": {0, 1}, "decr": {1, 0}, "drve": {1, 0}, "sign": {1, 0}, "vrfy": {0, 1},
				"wrap": {0, 1}, "unwp": {1, 0}, "perm": {1, 1}, "priv": {1, 1}, "modi": {1, 1}, "extr": {1, 1},
				"next": {0, 0}, "sens": {0, 0}, "asen": {0, 0}, "snrc": {0, 0}, "vyrc": {0, 0},
			} {
				if priv[code] != want[0] || pub[code] != want[1] {
					t.Errorf("%s: private %v public %v, want %v", code, priv[code], pub[code], want)
				}
			}
			// The external representation parses back to the same key.
			info, _ := InspectKey(k)
			back, err := ParseKey(info.Type, true, info.External)
			if err != nil {
				t.Fatal(err)
			}
			if !back.(interface{ Equal(crypto.PrivateKey) bool }).Equal(k) {
				t.Fatal("private key round trip")
			}
			pinfo, _ := InspectKey(k.Public())
			pback, err := ParseKey(pinfo.Type, false, pinfo.External)
			if err != nil || !pback.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
				t.Fatalf("public key round trip: %v", err)
			}
		})
	}
	sizes := map[string]int64{"leaf-rsa": 2048, "leaf-p384": 384, "leaf-ed25519": 256, "p521": 521}
	types := map[string]int64{"leaf-rsa": 42, "leaf-p384": 73, "leaf-ed25519": 105, "p521": 73}
	for f, bits := range sizes {
		a, _ := KeyAttributes(loadKey(t, f+".key"))
		if a["bsiz"] != bits || a["esiz"] != bits || a["type"] != types[f] {
			t.Errorf("%s: bsiz %v esiz %v type %v", f, a["bsiz"], a["esiz"], a["type"])
		}
	}
}

// A certificate's pkhh equals its key's klbl: that is what pairs them.
func TestPairing(t *testing.T) {
	pairs := map[string]string{"leaf-rsa.pem": "leaf-rsa.key", "leaf-p384.pem": "leaf-p384.key", "leaf-ed25519.pem": "leaf-ed25519.key", "shared-1.pem": "shared.key", "shared-2.pem": "shared.key"}
	for c, k := range pairs {
		cert, key := loadCert(t, c), loadKey(t, k)
		ca, _ := CertificateAttributes(cert)
		ka, _ := KeyAttributes(key)
		if !bytes.Equal(ca["pkhh"].([]byte), ka["klbl"].([]byte)) || !Pairs(cert, key) {
			t.Errorf("%s and %s do not pair", c, k)
		}
	}
	if Pairs(loadCert(t, "leaf-rsa.pem"), loadKey(t, "shared.key")) {
		t.Error("unrelated certificate and key pair")
	}
}

func TestSummaryAndEmail(t *testing.T) {
	rsaLeaf, p384 := loadCert(t, "leaf-rsa.pem"), loadCert(t, "leaf-p384.pem")
	if s := SubjectSummary(rsaLeaf); s != "leaf rsa" {
		t.Errorf("summary %q", s)
	}
	if !HasEmail(rsaLeaf, "alice@example.COM") || HasEmail(rsaLeaf, "bob@example.com") {
		t.Error("HasEmail from the SAN, ignoring case")
	}
	if !HasEmail(p384, "BOB@example.com") {
		t.Errorf("HasEmail from the subject's emailAddress: %v", EmailAddresses(p384))
	}
	if HasEmail(loadCert(t, "mouseca.pem"), "") {
		t.Error("a certificate without e-mail matches nothing")
	}
	exp := loadCert(t, "expired.pem")
	if ValidOn(exp, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || !ValidOn(exp, time.Date(2000, 6, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("ValidOn")
	}
}

func TestQueryAttributesDropCapabilities(t *testing.T) {
	q, _ := QueryKeyAttributes(loadKey(t, "shared.key"))
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if got := strings.Join(keys, ","); got != "asen,bsiz,esiz,extr,kcls,klbl,modi,next,priv,sens,type" {
		t.Errorf("query attributes %s", got)
	}
}

func TestInspectRejects(t *testing.T) {
	for _, k := range []any{nil, "key", (*rsa.PublicKey)(nil), (*ecdsa.PublicKey)(nil), ed25519.PublicKey{1, 2}} {
		if _, err := InspectKey(k); err == nil {
			t.Errorf("InspectKey(%T) accepted", k)
		}
	}
	if _, err := ParseKey(73, false, []byte{4, 1, 2}); err == nil {
		t.Error("ParseKey accepted a short point")
	}
	if _, err := ParseKey(999, false, nil); err == nil {
		t.Error("ParseKey accepted an unknown type")
	}
}

func pemBytes(b []byte) []byte {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil
	}
	return blk.Bytes
}

func loadKeyFile(f *testing.F, file string) crypto.Signer {
	b, _ := os.ReadFile(file)
	k, err := x509.ParsePKCS8PrivateKey(pemBytes(b))
	if err != nil {
		f.Fatal(err)
	}
	return k.(crypto.Signer)
}
