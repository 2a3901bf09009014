package secitem_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

// exampleDB opens a fresh store in a temporary directory.
func exampleDB() (*secitem.DB, func()) {
	dir, err := os.MkdirTemp("", "secitem-example")
	if err != nil {
		panic(err)
	}
	db, err := secitem.Open(filepath.Join(dir, "login.keychain"), nil)
	if err != nil {
		panic(err)
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }
}

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "secitem-example")
	defer os.RemoveAll(dir)

	// Open creates the store, and a device secret beside it
	// (login.keychain.device), on first use.
	db, err := secitem.Open(filepath.Join(dir, "login.keychain"), &secitem.Options{
		Entitlements: secitem.Entitlements{KeychainAccessGroups: []string{"SKMME9E2Y8.com.example.app"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	// A second Open of a store in use fails instead of waiting.
	_, err = secitem.Open(filepath.Join(dir, "login.keychain"), nil)
	fmt.Println(errors.Is(err, secitem.ErrNotAvailable))
	// Output:
	// true
}

func ExampleDB_Add() {
	db, done := exampleDB()
	defer done()

	attrs, err := db.Add(secitem.Dict{
		secitem.Class:            secitem.ClassGenericPassword,
		secitem.AttrService:      "com.example.api",
		secitem.AttrAccount:      "alice",
		secitem.ValueData:        []byte("correct horse"),
		secitem.ReturnAttributes: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	a := attrs.(secitem.Dict)
	fmt.Println(a[secitem.AttrAccount], a[secitem.AttrAccessGroup], a[secitem.AttrAccessible])

	// The same service and account again: the primary key is taken.
	_, err = db.Add(secitem.Dict{
		secitem.Class:       secitem.ClassGenericPassword,
		secitem.AttrService: "com.example.api",
		secitem.AttrAccount: "alice",
		secitem.ValueData:   []byte("another"),
	})
	fmt.Println(err)
	// Output:
	// alice secitemdb.default ak
	// SecItemAdd: errSecDuplicateItem (-25299): the specified item already exists in the keychain: an item of class "genp" with the same primary key (acct, svce, agrp, sync, vwht, tkid, musr, ggrp) already exists
}

func ExampleDB_CopyMatching() {
	db, done := exampleDB()
	defer done()
	for _, user := range []string{"alice", "bob"} {
		db.Add(secitem.Dict{
			secitem.Class:       secitem.ClassGenericPassword,
			secitem.AttrService: "com.example.api",
			secitem.AttrAccount: user,
			secitem.ValueData:   []byte("secret of " + user),
		})
	}

	// One item's secret: limit one is the default.
	data, err := db.CopyMatching(secitem.Dict{
		secitem.Class:       secitem.ClassGenericPassword,
		secitem.AttrService: "com.example.api",
		secitem.AttrAccount: "bob",
		secitem.ReturnData:  true,
	})
	fmt.Printf("%s %v\n", data, err)

	// Every match's attributes: an array, in creation order.
	all, _ := db.CopyMatching(secitem.Dict{
		secitem.Class:            secitem.ClassGenericPassword,
		secitem.AttrService:      "com.example.api",
		secitem.MatchLimit:       secitem.MatchLimitAll,
		secitem.ReturnAttributes: true,
	})
	for _, item := range all.([]any) {
		fmt.Println(item.(secitem.Dict)[secitem.AttrAccount])
	}

	_, err = db.CopyMatching(secitem.Dict{
		secitem.Class:       secitem.ClassGenericPassword,
		secitem.AttrService: "com.example.api",
		secitem.AttrAccount: "carol",
	})
	fmt.Println(errors.Is(err, secitem.ErrItemNotFound))
	// Output:
	// secret of bob <nil>
	// alice
	// bob
	// true
}

func ExampleDB_Update() {
	db, done := exampleDB()
	defer done()
	ref, _ := db.Add(secitem.Dict{
		secitem.Class:               secitem.ClassGenericPassword,
		secitem.AttrService:         "com.example.api",
		secitem.AttrAccount:         "alice",
		secitem.ValueData:           []byte("old password"),
		secitem.ReturnPersistentRef: true,
	})

	// Prefer Update to delete-then-add: the item keeps its persistent
	// reference and every attribute not named here.
	err := db.Update(
		secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "com.example.api", secitem.AttrAccount: "alice"},
		secitem.Dict{secitem.ValueData: []byte("new password")},
	)
	fmt.Println(err)

	data, _ := db.CopyMatching(secitem.Dict{secitem.ValuePersistentRef: ref, secitem.ReturnData: true})
	fmt.Printf("%s\n", data)

	// Access control is fixed when the item is added.
	err = db.Update(
		secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "com.example.api"},
		secitem.Dict{secitem.AttrAccessControl: secitem.AccessibleAfterFirstUnlock},
	)
	fmt.Println(secitem.StatusOf(err).Name())
	// Output:
	// <nil>
	// new password
	// errSecParam
}

func ExampleDB_Delete() {
	db, done := exampleDB()
	defer done()
	for _, user := range []string{"alice", "bob"} {
		db.Add(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "com.example.api", secitem.AttrAccount: user})
	}

	// Delete removes every match: there is no limit of one here.
	err := db.Delete(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "com.example.api"})
	fmt.Println(err)
	err = db.Delete(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "com.example.api"})
	fmt.Println(secitem.StatusOf(err).Name())
	// Output:
	// <nil>
	// errSecItemNotFound
}

func ExampleDB_Client() {
	db, done := exampleDB()
	defer done()
	v1 := db.Client(secitem.Entitlements{KeychainAccessGroups: []string{"SKMME9E2Y8.groupA", "SKMME9E2Y8.groupB"}})
	v2 := db.Client(secitem.Entitlements{KeychainAccessGroups: []string{"SKMME9E2Y8.groupB"}})

	// A new item goes into the caller's first access group.
	v1.Add(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "token"})

	_, err := v2.CopyMatching(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "token"})
	fmt.Println(secitem.StatusOf(err).Name())
	_, err = v2.CopyMatching(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrAccessGroup: "SKMME9E2Y8.groupA"})
	fmt.Println(secitem.StatusOf(err).Name())
	// Output:
	// errSecItemNotFound
	// errSecMissingEntitlement
}

// The "delete while locked" pitfall (pitfalls.md 9): a read that fails
// because the device is locked is not a missing item. Deleting to "start
// over" succeeds while locked, and destroys the user's credential.
func ExampleDB_Lock() {
	dir, _ := os.MkdirTemp("", "secitem-example")
	defer os.RemoveAll(dir)
	db, _ := secitem.Open(filepath.Join(dir, "login.keychain"), &secitem.Options{
		PasscodeCost: &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}, // cheap for the example; omit in real code
	})
	defer db.Close()
	db.SetPasscode(nil, []byte("123456"))
	query := secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "api", secitem.AttrAccount: "alice"}
	db.Add(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "api", secitem.AttrAccount: "alice", secitem.ValueData: []byte("token")})

	db.Lock() // the app goes to the background, the user locks the phone
	_, err := db.CopyMatching(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "api", secitem.AttrAccount: "alice", secitem.ReturnData: true})
	fmt.Println("read while locked:", secitem.StatusOf(err).Name())

	// Right: on errSecInteractionNotAllowed, stop and try again later.
	if errors.Is(err, secitem.ErrInteractionNotAllowed) {
		fmt.Println("right: keep the item, retry after unlock")
	}
	// Wrong: treat any failure as "no credential" and reset.
	fmt.Println("naive delete while locked:", secitem.StatusOf(db.Delete(query)).Name())

	db.Unlock([]byte("123456"))
	_, err = db.CopyMatching(query)
	fmt.Println("after unlock:", secitem.StatusOf(err).Name())
	// Output:
	// read while locked: errSecInteractionNotAllowed
	// right: keep the item, retry after unlock
	// naive delete while locked: errSecSuccess
	// after unlock: errSecItemNotFound
}

func ExampleDB_SetPasscode() {
	dir, _ := os.MkdirTemp("", "secitem-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "login.keychain")
	opts := &secitem.Options{PasscodeCost: &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}} // cheap for the example
	db, _ := secitem.Open(path, opts)
	fmt.Println(db.State())
	db.SetPasscode(nil, []byte("123456"))
	db.Close()

	db, _ = secitem.Open(path, opts)
	defer db.Close()
	fmt.Println(db.State())
	err := db.Unlock([]byte("000000"))
	fmt.Println(secitem.StatusOf(err).Name())
	fmt.Println(db.Unlock([]byte("123456")), db.State())
	// Output:
	// Unlocked
	// BeforeFirstUnlock
	// errSecAuthFailed
	// <nil> Unlocked
}

func readTestPEM(file string) []byte {
	b, _ := os.ReadFile(filepath.Join("..", "identity", "testdata", file))
	blk, _ := pem.Decode(b)
	return blk.Bytes
}

// Adding an identity stores its two halves; finding it joins them again;
// the private key comes back as a crypto.Signer.
func ExampleDB_Add_identity() {
	db, done := exampleDB()
	defer done()
	cert, _ := x509.ParseCertificate(readTestPEM("leaf-p384.pem"))
	key, _ := x509.ParsePKCS8PrivateKey(readTestPEM("leaf-p384.key"))

	// Parse first, then add by reference: the keychain derives the
	// attributes that pair the two halves (pkhh of the certificate equals
	// klbl of the key).
	_, err := db.Add(secitem.Dict{
		secitem.ValueRef: &identity.Identity{Certificate: cert, PrivateKey: key.(crypto.Signer)},
	})
	fmt.Println("add identity:", err)

	// The keychain holds one certificate and one key, and one identity.
	for _, class := range []string{secitem.ClassCertificate, secitem.ClassKey, secitem.ClassIdentity} {
		all, _ := db.CopyMatching(secitem.Dict{secitem.Class: class, secitem.MatchLimit: secitem.MatchLimitAll, secitem.ReturnAttributes: true})
		fmt.Println(class, len(all.([]any)))
	}

	// Find the identity by its certificate's label and sign with it.
	ref, _ := db.CopyMatching(secitem.Dict{
		secitem.Class:     secitem.ClassIdentity,
		secitem.AttrLabel: "Leaf P-384",
		secitem.ReturnRef: true,
	})
	id := ref.(*identity.Identity)
	digest := sha256.Sum256([]byte("hello"))
	sig, _ := id.PrivateKey.Sign(rand.Reader, digest[:], crypto.SHA256)
	fmt.Println("signed by", id.Certificate.Subject.CommonName, ecdsa.VerifyASN1(id.Certificate.PublicKey.(*ecdsa.PublicKey), digest[:], sig))
	// Output:
	// add identity: <nil>
	// cert 1
	// keys 1
	// idnt 1
	// signed by Leaf P-384 true
}

// A key protected by the (emulated) Secure Enclave signs but never leaves:
// r_Data gives an opaque handle, and the Signer cannot be exported.
func ExampleDB_GenerateKey() {
	db, done := exampleDB()
	defer done()
	key, err := db.GenerateKey(secitem.Dict{
		secitem.AttrKeyType:       secitem.KeyTypeECSECPrimeRandom,
		secitem.AttrKeySizeInBits: 256,
		secitem.AttrTokenID:       secitem.TokenIDSecureEnclave,
		secitem.PrivateKeyAttrs:   secitem.Dict{secitem.AttrIsPermanent: true, secitem.AttrApplicationTag: "com.example.signing"},
	})
	fmt.Println(err)
	digest := sha256.Sum256([]byte("hello"))
	sig, _ := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	fmt.Println("verifies:", ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig))
	_, err = x509.MarshalPKCS8PrivateKey(key)
	fmt.Println("exportable:", err == nil)
	// Output:
	// <nil>
	// verifies: true
	// exportable: false
}

func ExampleDB_Explain() {
	db, done := exampleDB()
	defer done()
	db.Add(secitem.Dict{
		secitem.Class:       secitem.ClassGenericPassword,
		secitem.AttrService: "AYS",
		secitem.AttrAccount: "mrgumby",
		secitem.AttrGeneric: "A",
		secitem.ValueData:   []byte("opendoor"),
	})

	// The search misses: why?
	ex, err := db.Explain(secitem.Dict{
		secitem.Class:       secitem.ClassGenericPassword,
		secitem.AttrService: "AYS",
		secitem.AttrAccount: "mrgumby",
		secitem.AttrGeneric: "SecItemHints",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ex.Matches, "matches")
	for _, it := range ex.Items {
		fmt.Println(it.Summary)
		for _, r := range it.Reasons {
			fmt.Println("  -", r.Text)
		}
		for _, n := range it.Notes {
			fmt.Println("  note:", n)
		}
	}
	// Output:
	// 0 matches
	// acct "mrgumby", svce "AYS", agrp "secitemdb.default"
	//   - gena differs: the query has "SecItemHints", the item "A"
	//   note: same primary key as the query: adding the query's dictionary (with v_Data) fails with errSecDuplicateItem (-25299); update this item instead
}

// A store opened with a small lookup cache: reads by the whole primary
// key are answered the same; Stats tells the table's size and use.
func ExampleDB_Stats_lookupCache() {
	dir, _ := os.MkdirTemp("", "secitem-example")
	defer os.RemoveAll(dir)
	db, err := secitem.Open(filepath.Join(dir, "login.keychain"), &secitem.Options{LookupCacheEntries: 16})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	for _, acct := range []string{"alice", "bob"} {
		db.Add(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "mail",
			secitem.AttrAccount: acct, secitem.ValueData: []byte("pw-" + acct)})
	}
	got, _ := db.CopyMatching(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "mail",
		secitem.AttrAccount: "bob", secitem.ReturnData: true})
	fmt.Println(len(got.([]byte)), "bytes found")
	st, _ := db.Stats()
	fmt.Printf("lookup cache: %d entries, %d bytes, %d in use\n", st.LookupCacheEntries, st.LookupCacheBytes, st.LookupCacheFilled)
	// Output:
	// 6 bytes found
	// lookup cache: 16 entries, 704 bytes, 1 in use
}
