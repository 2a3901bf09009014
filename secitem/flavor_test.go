package secitem_test

import (
	"bytes"
	"testing"

	"github.com/secitemdb/secitemdb/identity"
	. "github.com/secitemdb/secitemdb/secitem"
)

// Each difference of the file-based flavor (pitfalls.md, last section) run
// side by side with the data protection flavor.

func bothFlavors(t *testing.T, fn func(t *testing.T, db *DB, fb bool)) {
	for _, f := range []Flavor{DataProtection, FileBased} {
		t.Run(f.String(), func(t *testing.T) {
			fn(t, openTest(t, &Options{Flavor: f, PasscodeCost: cheapCost}), f == FileBased)
		})
	}
}

func TestFlavorUnsupportedAttributes(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		_, err := db.Add(dictOf(ClassCertificate, AttrApplicationTag, "user1", AttrSerialNumber, []byte{1}))
		_, qerr := db.CopyMatching(dictOf(ClassCertificate, AttrApplicationTag, "user2"))
		if fb {
			wantStatus(t, err, 0)  // the attribute is dropped...
			wantStatus(t, qerr, 0) // ... and a search by it finds the first certificate
			if n := count(t, db, dictOf(ClassCertificate)); n != 1 {
				t.Fatalf("%d certificates", n)
			}
		} else {
			wantStatus(t, err, ErrNoSuchAttr)
			wantStatus(t, qerr, ErrNoSuchAttr)
		}
		// Update's attributes are checked in both flavors.
		wantStatus(t, db.Update(dictOf(ClassCertificate), Dict{AttrApplicationTag: "x"}), ErrNoSuchAttr)
	})
}

func TestFlavorDeleteWithoutLimit(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		for _, a := range []string{"a", "b", "c"} {
			mustAdd(t, db, genp(AttrService, "s", AttrAccount, a))
		}
		wantStatus(t, db.Delete(genp(AttrService, "s")), 0)
		want := 0
		if fb {
			want = 2 // the shim deletes one match
		}
		if n := count(t, db, genp(AttrService, "s")); n != want {
			t.Fatalf("%d left, want %d", n, want)
		}
		if fb {
			wantStatus(t, db.Delete(genp(AttrService, "s", MatchLimit, MatchLimitAll)), 0)
			if n := count(t, db, genp(AttrService, "s")); n != 0 {
				t.Fatalf("m_LimitAll left %d", n)
			}
		} else {
			wantStatus(t, db.Delete(genp(AttrService, "s", MatchLimit, MatchLimitAll)), ErrParam)
		}
	})
}

func TestFlavorLockedRead(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		wantStatus(t, db.SetPasscode(nil, passA), 0)
		mustAdd(t, db, genp(AttrService, "s", ValueData, []byte("pw")))
		wantStatus(t, db.Lock(), 0)
		_, err := db.CopyMatching(genp(AttrService, "s", ReturnData, true))
		if fb {
			wantStatus(t, err, ErrItemNotFound)
		} else {
			wantStatus(t, err, ErrInteractionNotAllowed)
		}
		// Writes need the key in both flavors.
		_, err = db.Add(genp(AttrService, "t"))
		wantStatus(t, err, ErrInteractionNotAllowed)
	})
}

func TestFlavorIssuerAndSubject(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		ca := certOf(t, "mouseca")
		mustAdd(t, db, Dict{ValueRef: ca})
		r, err := db.CopyMatching(Dict{Class: ClassCertificate, ReturnAttributes: true})
		wantStatus(t, err, 0)
		d := r.(Dict)
		contents, _ := identity.NormalizeName(ca.RawIssuer)
		want := contents
		if fb {
			want = ca.RawIssuer // the full DER Name
		}
		for _, code := range []string{AttrIssuer, AttrSubject} {
			if !bytes.Equal(d[code].([]byte), want) {
				t.Errorf("%s = %x, want %x", code, d[code], want)
			}
		}
		// Either form finds the certificate in both flavors.
		for _, q := range [][]byte{ca.RawIssuer, contents} {
			if n := count(t, db, Dict{Class: ClassCertificate, AttrIssuer: q}); n != 1 {
				t.Errorf("query by issuer %x: %d", q[:2], n)
			}
		}
	})
}

func TestFlavorAddReturningAttributes(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		r := mustAdd(t, db, genp(AttrService, "s", ReturnAttributes, true))
		if fb {
			arr, ok := r.([]any)
			if !ok || len(arr) != 1 || arr[0].(Dict)[AttrService] != "s" {
				t.Fatalf("file-based add returned %T %v", r, r)
			}
		} else if r.(Dict)[AttrService] != "s" {
			t.Fatalf("add returned %v", r)
		}
		// Other return keys keep their shapes.
		pr := mustAdd(t, db, genp(AttrService, "t", ReturnPersistentRef, true))
		if _, ok := pr.([]byte); !ok {
			t.Fatalf("r_PersistentRef shape %T", pr)
		}
	})
}

// The router strips match keys from Update and Delete queries, and return
// keys from Update queries, before the data protection keychain sees them:
// ignored in the file-based flavor, errSecParam in the other.
func TestFlavorStripsKeysFromUpdateAndDelete(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		mustAdd(t, db, genp(AttrService, "s", AttrAccount, "a", ValueData, []byte("v1")))
		want := ErrParam
		if fb {
			want = 0
		}
		wantStatus(t, db.Update(genp(AttrService, "s", ReturnData, true), Dict{ValueData: []byte("v2")}), want)
		wantStatus(t, db.Update(genp(AttrService, "s", MatchCaseInsensitive, true), Dict{ValueData: []byte("v3")}), want)
		r, err := db.CopyMatching(genp(AttrService, "s", ReturnData, true))
		wantData := "v1"
		if fb {
			wantData = "v3"
		}
		if err != nil || string(r.([]byte)) != wantData {
			t.Fatalf("after the updates: %v, %v; want %q", r, err, wantData)
		}
		wantStatus(t, db.Delete(genp(AttrService, "s", MatchCaseInsensitive, true)), want)
		wantN := 1
		if fb {
			wantN = 0
		}
		if n := count(t, db, genp(AttrService, "s")); n != wantN {
			t.Fatalf("%d items left, want %d", n, wantN)
		}
	})
}
