package secitem_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/protect"
	. "github.com/secitemdb/secitemdb/secitem"
)

func testdata(t testing.TB, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "identity", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	return blk.Bytes
}

func certOf(t testing.TB, name string) *x509.Certificate {
	c, err := x509.ParseCertificate(testdata(t, name+".pem"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keyOf(t testing.TB, name string) crypto.Signer {
	k, err := x509.ParsePKCS8PrivateKey(testdata(t, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer)
}

func idOf(t testing.TB, cert, key string) *identity.Identity {
	return &identity.Identity{Certificate: certOf(t, cert), PrivateKey: keyOf(t, key)}
}

var idnt = Dict{Class: ClassIdentity}

func identities(t *testing.T, c interface {
	CopyMatching(Dict) (any, error)
}, q Dict) []Dict {
	t.Helper()
	return matching(t, c, q)
}

func TestCertificateByReference(t *testing.T) {
	db := openTest(t, nil)
	leaf := certOf(t, "leaf-rsa")
	r := mustAdd(t, db, Dict{ValueRef: leaf, ReturnAttributes: true}).(Dict)
	want, _ := identity.CertificateAttributes(leaf)
	for _, code := range []string{AttrIssuer, AttrSubject, AttrSerialNumber, AttrPublicKeyHash} {
		if !bytes.Equal(r[code].([]byte), want[code].([]byte)) {
			t.Errorf("%s = %x, want %x", code, r[code], want[code])
		}
	}
	if r[AttrCertificateType] != int64(3) || r[AttrCertificateEncoding] != int64(3) || r[AttrLabel] != "leaf rsa" || r[AttrAccessible] != AccessibleAlways {
		t.Errorf("derived attributes: %s", FormatDict(r))
	}
	got, err := db.CopyMatching(Dict{Class: ClassCertificate, AttrLabel: "leaf rsa", ReturnRef: true})
	wantStatus(t, err, 0)
	if !got.(*x509.Certificate).Equal(leaf) {
		t.Fatal("r_Ref did not return the certificate")
	}
	// A certificate reference in a query stands for its attributes.
	if _, err := db.CopyMatching(Dict{ValueRef: leaf}); err != nil {
		t.Fatalf("query by certificate ref: %v", err)
	}
	_, err = db.Add(Dict{ValueRef: leaf})
	wantStatus(t, err, ErrDuplicateItem)
	_, err = db.Add(Dict{Class: ClassGenericPassword, ValueRef: leaf})
	wantStatus(t, err, ErrParam)
	_, err = db.Add(Dict{ValueRef: "not a certificate"})
	wantStatus(t, err, ErrParam)
}

func TestKeyByReference(t *testing.T) {
	db := openTest(t, nil)
	for _, name := range []string{"leaf-rsa", "leaf-p384", "leaf-ed25519"} {
		k := keyOf(t, name)
		mustAdd(t, db, Dict{ValueRef: k, AttrApplicationTag: name})
		got, err := db.CopyMatching(Dict{Class: ClassKey, AttrApplicationTag: name, ReturnRef: true})
		wantStatus(t, err, 0)
		if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(k) {
			t.Fatalf("%s: r_Ref returned another key", name)
		}
		mustAdd(t, db, Dict{ValueRef: k.Public(), AttrApplicationTag: name})
		pub, err := db.CopyMatching(Dict{Class: ClassKey, AttrApplicationTag: name, AttrKeyClass: KeyClassPublic, ReturnRef: true})
		wantStatus(t, err, 0)
		if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
			t.Fatalf("%s: r_Ref of the public key", name)
		}
		// A key reference in a query finds that key.
		if _, err := db.CopyMatching(Dict{ValueRef: k}); err != nil {
			t.Fatalf("%s: query by key ref: %v", name, err)
		}
	}
}

// Pitfall 4: an identity exists whenever a certificate and a private key
// with matching hashes are both there.
func TestIdentityFormsAndDissolves(t *testing.T) {
	for _, order := range []string{"cert first", "key first"} {
		t.Run(order, func(t *testing.T) {
			db := openTest(t, nil)
			cert, key := certOf(t, "leaf-p384"), keyOf(t, "leaf-p384")
			first, second := Dict{ValueRef: cert}, Dict{ValueRef: key}
			if order == "key first" {
				first, second = second, first
			}
			mustAdd(t, db, first)
			if n := len(identities(t, db, idnt)); n != 0 {
				t.Fatalf("%d identities from one half", n)
			}
			mustAdd(t, db, second)
			ids := identities(t, db, idnt)
			if len(ids) != 1 {
				t.Fatalf("%d identities, want 1", len(ids))
			}
			got, err := db.CopyMatching(Dict{Class: ClassIdentity, ReturnRef: true})
			wantStatus(t, err, 0)
			id := got.(*identity.Identity)
			if !id.Certificate.Equal(cert) || !id.PrivateKey.(interface{ Equal(crypto.PrivateKey) bool }).Equal(key) {
				t.Fatal("r_Ref returned another identity")
			}
			// Deleting either half dissolves it.
			half := Dict{Class: ClassKey}
			if order == "key first" {
				half = Dict{Class: ClassCertificate}
			}
			wantStatus(t, db.Delete(half), 0)
			if n := len(identities(t, db, idnt)); n != 0 {
				t.Fatalf("%d identities after deleting a half", n)
			}
		})
	}
}

func TestAddIdentity(t *testing.T) {
	db := openTest(t, nil)
	id := idOf(t, "leaf-rsa", "leaf-rsa")
	pr := mustAdd(t, db, Dict{ValueRef: id, ReturnPersistentRef: true}).([]byte)
	if !bytes.HasPrefix(pr, []byte("idnt")) || len(pr) != 20 {
		t.Fatalf("identity persistent ref %x", pr)
	}
	if n := count(t, db, Dict{Class: ClassCertificate}); n != 1 {
		t.Fatalf("%d certificates", n)
	}
	if n := count(t, db, Dict{Class: ClassKey}); n != 1 {
		t.Fatalf("%d keys", n)
	}
	_, err := db.Add(Dict{ValueRef: id})
	wantStatus(t, err, ErrDuplicateItem)
	got, err := db.CopyMatching(Dict{ValuePersistentRef: pr, ReturnRef: true})
	wantStatus(t, err, 0)
	if !got.(*identity.Identity).Certificate.Equal(id.Certificate) {
		t.Fatal("the identity persistent ref finds another identity")
	}
	// With the certificate already there, adding the identity adds the key.
	db2 := openTest(t, nil)
	mustAdd(t, db2, Dict{ValueRef: id.Certificate})
	mustAdd(t, db2, Dict{ValueRef: id})
	if n := len(identities(t, db2, idnt)); n != 1 {
		t.Fatalf("%d identities", n)
	}
	// With the key already there, adding the identity adds the certificate.
	db3 := openTest(t, nil)
	mustAdd(t, db3, Dict{ValueRef: id.PrivateKey})
	mustAdd(t, db3, Dict{ValueRef: id, AttrLabel: "mine"})
	if ids := identities(t, db3, idnt); len(ids) != 1 || ids[0][AttrLabel] != "mine" {
		t.Fatalf("identities %v", ids)
	}
}

// Two certificates for one key are two identities; deleting one leaves
// the other with its key.
func TestSharedKeyIdentities(t *testing.T) {
	db := openTest(t, nil)
	key := keyOf(t, "shared")
	id1 := &identity.Identity{Certificate: certOf(t, "shared-1"), PrivateKey: key}
	id2 := &identity.Identity{Certificate: certOf(t, "shared-2"), PrivateKey: key}
	mustAdd(t, db, Dict{ValueRef: id1})
	mustAdd(t, db, Dict{ValueRef: id2})
	if n := len(identities(t, db, idnt)); n != 2 {
		t.Fatalf("%d identities, want 2", n)
	}
	wantStatus(t, db.Delete(Dict{ValueRef: id1}), 0)
	ids := identities(t, db, idnt)
	if len(ids) != 1 || ids[0][AttrLabel] != "Shared key 2" {
		t.Fatalf("after deleting one: %v", ids)
	}
	if n := count(t, db, Dict{Class: ClassKey}); n != 1 {
		t.Fatal("the shared key was deleted with the first identity")
	}
	wantStatus(t, db.Delete(Dict{ValueRef: id2}), 0)
	if n := count(t, db, Dict{Class: ClassKey}); n != 0 {
		t.Fatal("the key outlived its last certificate")
	}
}

// Pitfall 13: raw certificate bytes get default attributes only, so they
// form no identity.
func TestRawCertificateFormsNoIdentity(t *testing.T) {
	db := openTest(t, nil)
	raw := certOf(t, "leaf-p384").Raw
	r := mustAdd(t, db, Dict{Class: ClassCertificate, ValueData: raw, ReturnAttributes: true}).(Dict)
	if _, ok := r[AttrPublicKeyHash]; ok || len(r[AttrIssuer].([]byte)) != 0 {
		t.Fatalf("raw certificate got derived attributes: %s", FormatDict(r))
	}
	mustAdd(t, db, Dict{ValueRef: keyOf(t, "leaf-p384")})
	if n := len(identities(t, db, idnt)); n != 0 {
		t.Fatalf("%d identities from a raw certificate", n)
	}
	// Parsed first and added by reference, it pairs.
	mustAdd(t, db, Dict{ValueRef: certOf(t, "leaf-p384")})
	if n := len(identities(t, db, idnt)); n != 1 {
		t.Fatalf("%d identities", n)
	}
}

// The identity's label is its certificate's (apple-reference.md f.1).
func TestIdentityLabelPrecedence(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, Dict{ValueRef: idOf(t, "leaf-ed25519", "leaf-ed25519")})
	wantStatus(t, db.Update(Dict{Class: ClassKey}, Dict{AttrLabel: "key label"}), 0)
	if n := len(identities(t, db, Dict{Class: ClassIdentity, AttrLabel: "key label"})); n != 0 {
		t.Fatal("relabelling the key changed identity lookup")
	}
	if n := len(identities(t, db, Dict{Class: ClassIdentity, AttrLabel: "Leaf Ed25519"})); n != 1 {
		t.Fatal("the certificate's label does not find the identity")
	}
	wantStatus(t, db.Update(Dict{Class: ClassCertificate}, Dict{AttrLabel: "cert label"}), 0)
	if ids := identities(t, db, Dict{Class: ClassIdentity, AttrLabel: "cert label"}); len(ids) != 1 || ids[0][AttrLabel] != "cert label" {
		t.Fatal("relabelling the certificate did not change identity lookup")
	}
}

func TestIssuerQueries(t *testing.T) {
	db := openTest(t, nil)
	ca := certOf(t, "mouseca")
	mustAdd(t, db, Dict{ValueRef: certOf(t, "leaf-rsa")})
	mustAdd(t, db, Dict{ValueRef: certOf(t, "leaf-p384")}) // issued by the intermediate
	normalised, _ := identity.NormalizeName(ca.RawSubject)
	for name, issuer := range map[string][]byte{"raw DER Name": ca.RawSubject, "normalised contents": normalised} {
		if n := count(t, db, Dict{Class: ClassCertificate, AttrIssuer: issuer}); n != 1 {
			t.Errorf("issr as %s found %d certificates, want 1", name, n)
		}
	}
	// m_Issuers follows the issuer chain through stored certificates.
	q := Dict{Class: ClassCertificate, MatchIssuers: []any{ca.RawSubject}}
	if n := count(t, db, q); n != 1 {
		t.Fatalf("m_Issuers without the intermediate: %d, want 1", n)
	}
	mustAdd(t, db, Dict{ValueRef: certOf(t, "intermediate")})
	if n := count(t, db, q); n != 3 {
		t.Fatalf("m_Issuers with the intermediate: %d, want 3 (leaf, leaf via intermediate, intermediate)", n)
	}
	inter := certOf(t, "intermediate")
	if n := count(t, db, Dict{Class: ClassCertificate, MatchIssuers: [][]byte{inter.RawSubject}}); n != 1 {
		t.Fatalf("m_Issuers as [][]byte: %d", n)
	}
}

func TestCertificateMatchKeys(t *testing.T) {
	clock := newClock()
	db := openTest(t, &Options{Now: clock.Now})
	for _, c := range []string{"leaf-rsa", "leaf-p384", "expired", "mouseca"} {
		mustAdd(t, db, Dict{ValueRef: certOf(t, c)})
	}
	if n := count(t, db, Dict{Class: ClassCertificate, MatchValidOnDate: nil}); n != 3 {
		t.Errorf("valid now: %d, want 3", n)
	}
	if n := count(t, db, Dict{Class: ClassCertificate, MatchValidOnDate: time.Date(2000, 6, 1, 0, 0, 0, 0, time.UTC)}); n != 1 {
		t.Errorf("valid in 2000: %d, want 1", n)
	}
	if n := count(t, db, Dict{Class: ClassCertificate, MatchEmailAddressIfPresent: "ALICE@example.com"}); n != 1 {
		t.Errorf("e-mail alice: %d, want 1", n)
	}
	if n := count(t, db, Dict{Class: ClassCertificate, MatchEmailAddressIfPresent: "bob@example.com"}); n != 1 {
		t.Errorf("e-mail bob (subject emailAddress): %d, want 1", n)
	}
	if n := count(t, db, Dict{Class: ClassCertificate, MatchEmailAddressIfPresent: "carol@example.com"}); n != 0 {
		t.Errorf("certificates without that e-mail match: %d", n)
	}
	mustAdd(t, db, Dict{ValueRef: keyOf(t, "leaf-rsa")})
	if n := len(identities(t, db, Dict{Class: ClassIdentity, MatchEmailAddressIfPresent: "alice@example.com"})); n != 1 {
		t.Errorf("identity by e-mail: %d", n)
	}
	_, err := db.CopyMatching(Dict{Class: ClassKey, MatchValidOnDate: nil})
	wantStatus(t, err, ErrUnimplemented)
	for _, class := range []string{ClassKey, ClassGenericPassword, ClassInternetPassword} {
		_, err = db.CopyMatching(Dict{Class: class, MatchEmailAddressIfPresent: "alice@example.com"})
		wantStatus(t, err, ErrUnimplemented)
	}
	// On identities the certificate match keys apply to the certificate
	// half: the leaf's validity and its issuer chain.
	mustAdd(t, db, Dict{ValueRef: keyOf(t, "leaf-p384")})
	if n := len(identities(t, db, Dict{Class: ClassIdentity, MatchValidOnDate: nil})); n != 2 {
		t.Errorf("identities valid now: %d, want 2", n)
	}
	if n := len(identities(t, db, Dict{Class: ClassIdentity, MatchValidOnDate: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)})); n != 0 {
		t.Errorf("identities valid in 1990: %d, want 0", n)
	}
	ca := certOf(t, "mouseca")
	if n := len(identities(t, db, Dict{Class: ClassIdentity, MatchIssuers: []any{ca.RawSubject}})); n != 1 {
		t.Errorf("identities issued under MouseCA without the intermediate stored: %d, want 1 (leaf-rsa)", n)
	}
	mustAdd(t, db, Dict{ValueRef: certOf(t, "intermediate")})
	if n := len(identities(t, db, Dict{Class: ClassIdentity, MatchIssuers: []any{ca.RawSubject}})); n != 2 {
		t.Errorf("identities issued under MouseCA with the intermediate stored: %d, want 2", n)
	}
}

func TestDeleteIdentityByClass(t *testing.T) {
	db := openTest(t, nil)
	c := db.Client(Entitlements{KeychainAccessGroups: []string{"X", "Y"}})
	mustAdd(t, c, Dict{ValueRef: idOf(t, "leaf-rsa", "leaf-rsa"), AttrAccessGroup: "X"})
	mustAdd(t, c, Dict{ValueRef: idOf(t, "leaf-p384", "leaf-p384"), AttrAccessGroup: "Y"})
	mustAdd(t, c, Dict{ValueRef: keyOf(t, "p521"), AttrAccessGroup: "X"}) // pairs with nothing
	// {idnt, agrp X} removes every certificate and key in X, paired or not.
	wantStatus(t, c.Delete(Dict{Class: ClassIdentity, AttrAccessGroup: "X"}), 0)
	if n := count(t, c, Dict{Class: ClassKey, AttrAccessGroup: "X"}); n != 0 {
		t.Fatalf("%d keys left in X", n)
	}
	if n := len(identities(t, c, idnt)); n != 1 {
		t.Fatalf("%d identities left, want the one in Y", n)
	}
	// An attribute only certificates have: the certificates go, then the
	// key step fails with errSecNoSuchAttr.
	subj, _ := identity.NormalizeName(certOf(t, "leaf-p384").RawSubject)
	err := c.Delete(Dict{Class: ClassIdentity, AttrSubject: subj})
	wantStatus(t, err, ErrNoSuchAttr)
	if n := count(t, c, Dict{Class: ClassCertificate}); n != 0 {
		t.Fatal("the certificate step did not run")
	}
}

func TestUpdateIdentity(t *testing.T) {
	db := openTest(t, nil)
	id := idOf(t, "leaf-rsa", "leaf-rsa")
	pr := mustAdd(t, db, Dict{ValueRef: id, ReturnPersistentRef: true}).([]byte)
	wantStatus(t, db.Update(Dict{Class: ClassIdentity}, Dict{AttrComment: "x"}), ErrNoSuchAttr) // keys have no icmt... nor certs
	wantStatus(t, db.Update(Dict{Class: ClassIdentity}, Dict{AttrLabel: "both"}), 0)
	if count(t, db, Dict{Class: ClassCertificate, AttrLabel: "both"}) != 1 || count(t, db, Dict{Class: ClassKey, AttrLabel: "both"}) != 1 {
		t.Fatal("update by class did not reach both halves")
	}
	wantStatus(t, db.Update(Dict{ValueRef: id}, Dict{AttrAlias: "by-ref"}), 0)
	if count(t, db, Dict{Class: ClassCertificate, AttrAlias: "by-ref"}) != 1 || count(t, db, Dict{Class: ClassKey, AttrAlias: "by-ref"}) != 1 {
		t.Fatal("update by ref did not reach both halves")
	}
	wantStatus(t, db.Update(Dict{ValuePersistentRef: pr}, Dict{AttrLabel: "x"}), ErrInternal)
}

func TestTokenKey(t *testing.T) {
	enclave := protect.NewStaticDevice(bytes.Repeat([]byte{7}, 32))
	r := newReopenable(t, func(o *Options) { o.SecureEnclave = enclave })
	db := r.db
	wantStatus(t, db.SetPasscode(nil, passA), 0)
	k, err := db.GenerateKey(Dict{
		AttrKeyType: KeyTypeECSECPrimeRandom, AttrKeySizeInBits: 256, AttrTokenID: TokenIDSecureEnclave,
		PrivateKeyAttrs: Dict{AttrIsPermanent: true, AttrApplicationTag: "signing", AttrAccessible: AccessibleWhenUnlockedThisDeviceOnly},
	})
	wantStatus(t, err, 0)
	tk, ok := k.(*TokenKey)
	if !ok {
		t.Fatalf("GenerateKey returned %T", k)
	}
	digest := sha256.Sum256([]byte("message"))
	sig, err := tk.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(tk.Public().(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the signature does not verify with the public key")
	}
	// It refuses export.
	if _, err := x509.MarshalPKCS8PrivateKey(tk); err == nil {
		t.Fatal("a token key was exported")
	}
	data, err := db.CopyMatching(Dict{Class: ClassKey, AttrApplicationTag: "signing", ReturnData: true, ReturnAttributes: true})
	wantStatus(t, err, 0)
	d := data.(Dict)
	if !bytes.HasPrefix(d[ValueData].([]byte), []byte("SETK")) || d[AttrTokenID] != TokenIDSecureEnclave || d[AttrIsExtractable] != int64(0) {
		t.Fatalf("stored token key: %s", FormatDict(d))
	}
	// Found again by reference, it signs.
	ref, _ := db.CopyMatching(Dict{Class: ClassKey, AttrApplicationTag: "signing", ReturnRef: true})
	if _, err := ref.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
		t.Fatalf("signing through r_Ref: %v", err)
	}
	// Locked: its class key is unavailable.
	wantStatus(t, db.Lock(), 0)
	_, err = tk.Sign(rand.Reader, digest[:], crypto.SHA256)
	wantStatus(t, err, ErrInteractionNotAllowed)
	wantStatus(t, db.Unlock(passA), 0)
	// The enclave erased: listed, unusable for good.
	enclave.Erase()
	_, err = tk.Sign(rand.Reader, digest[:], crypto.SHA256)
	wantStatus(t, err, ErrDecode)
	if n := count(t, db, Dict{Class: ClassKey, AttrTokenID: TokenIDSecureEnclave}); n != 1 {
		t.Fatal("the token key item is no longer listed")
	}
	_, err = db.GenerateKey(Dict{AttrKeyType: KeyTypeRSA, AttrTokenID: TokenIDSecureEnclave})
	wantStatus(t, err, ErrParam)
}

func TestGenerateKey(t *testing.T) {
	db := openTest(t, nil)
	for _, tc := range []struct {
		typ  string
		bits int
	}{{KeyTypeRSA, 2048}, {KeyTypeECSECPrimeRandom, 384}, {KeyTypeEd25519, 256}} {
		tag := "gen-" + tc.typ
		k, err := db.GenerateKey(Dict{AttrKeyType: tc.typ, AttrKeySizeInBits: tc.bits, AttrIsPermanent: true, AttrApplicationTag: tag,
			PublicKeyAttrs: Dict{AttrIsPermanent: true}})
		wantStatus(t, err, 0)
		got, err := db.CopyMatching(Dict{Class: ClassKey, AttrApplicationTag: tag, AttrKeyClass: KeyClassPrivate, ReturnRef: true, ReturnAttributes: true})
		wantStatus(t, err, 0)
		d := got.(Dict)
		if d[AttrKeySizeInBits] != int64(tc.bits) || !d[ValueRef].(interface{ Equal(crypto.PrivateKey) bool }).Equal(k) {
			t.Fatalf("%s: stored %s", tc.typ, FormatDict(d))
		}
		if n := count(t, db, Dict{Class: ClassKey, AttrApplicationTag: tag}); n != 2 {
			t.Fatalf("%s: %d stored keys, want private and public", tc.typ, n)
		}
	}
	k, err := db.GenerateKey(Dict{AttrKeyType: KeyTypeECSECPrimeRandom})
	if err != nil || k.Public() == nil {
		t.Fatalf("a key that is not permanent: %v", err)
	}
	for _, bad := range []Dict{{}, {AttrKeyType: "99"}, {AttrKeyType: KeyTypeECSECPrimeRandom, AttrKeySizeInBits: 123}, {AttrKeyType: KeyTypeRSA, AttrKeySizeInBits: 512}, {AttrKeyType: KeyTypeRSA, PrivateKeyAttrs: "x"}} {
		_, err := db.GenerateKey(bad)
		wantStatus(t, err, ErrParam)
	}
}
