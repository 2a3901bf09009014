package property_test

// Pitfall properties: each states a naive belief about the keychain, checks
// the real rule on random cases, and requires the naive belief to be
// contradicted at least once, logging the first counterexample. A property
// whose naive belief always held would mean the pitfall no longer
// reproduces.

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/protect"
	. "github.com/secitemdb/secitemdb/secitem"
)

var cheap = &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}

// store opens a fresh store for one rapid case.
func store(t *rapid.T, opts Options) *DB {
	dir, err := os.MkdirTemp("", "secitem-prop")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Device == nil {
		opts.Device = protect.NewStaticDevice(bytes.Repeat([]byte{1}, 32))
	}
	opts.PasscodeCost = cheap
	db, err := Open(filepath.Join(dir, "k.db"), &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(); os.RemoveAll(dir) })
	return db
}

// belief tracks how often a naive belief was contradicted.
type belief struct {
	statement string
	broken    int
	example   string
}

func (b *belief) contradicted(format string, args ...any) {
	if b.broken == 0 {
		b.example = fmt.Sprintf(format, args...)
	}
	b.broken++
}

// check runs prop and then requires the belief to have been broken.
func check(t *testing.T, b *belief, prop func(*rapid.T)) {
	t.Helper()
	rapid.Check(t, prop)
	if b.broken == 0 {
		t.Fatalf("the naive belief %q was never contradicted", b.statement)
	}
	t.Logf("naive belief %q: contradicted %d times; first counterexample: %s", b.statement, b.broken, b.example)
}

func must(t *rapid.T, err error) {
	if err != nil {
		t.Fatal(err)
	}
}

func genp(kv ...any) Dict {
	d := Dict{Class: ClassGenericPassword}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

var small = rapid.SampledFrom([]string{"a", "b", "A"})

// 1. "CopyMatching says not found ⇒ Add succeeds."
func TestPitfall1Property(t *testing.T) {
	b := &belief{statement: "CopyMatching says not found ⇒ Add of the same dictionary succeeds"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		have := map[string]bool{}
		for i := rapid.IntRange(0, 3).Draw(rt, "items"); i > 0; i-- {
			svce, acct, gena := small.Draw(rt, "svce"), small.Draw(rt, "acct"), small.Draw(rt, "gena")
			if _, err := db.Add(genp(AttrService, svce, AttrAccount, acct, AttrGeneric, gena)); err == nil {
				have[svce+"/"+acct] = true
			}
		}
		q := genp(AttrService, small.Draw(rt, "qsvce"), AttrAccount, small.Draw(rt, "qacct"), AttrGeneric, small.Draw(rt, "qgena"))
		_, err := db.CopyMatching(q)
		if !errors.Is(err, ErrItemNotFound) {
			return
		}
		_, err = db.Add(q)
		taken := have[q[AttrService].(string)+"/"+q[AttrAccount].(string)]
		if taken != errors.Is(err, ErrDuplicateItem) || (!taken && err != nil) {
			rt.Fatalf("add of %s: %v (primary key taken: %v)", FormatDict(q), err, taken)
		}
		if err != nil {
			b.contradicted("items %v; %s finds nothing, yet Add fails with %v", have, FormatDict(q), StatusOf(err).Name())
		}
	})
}

// 2. "An attribute I give Add is stored with the item."
func TestPitfall2Property(t *testing.T) {
	b := &belief{statement: "an attribute given to Add is stored with the item"}
	codes := []string{AttrLabel, AttrApplicationTag, AttrAccount, AttrSubject, AttrComment}
	check(t, b, func(rt *rapid.T) {
		fb := rapid.Bool().Draw(rt, "file-based")
		f := DataProtection
		if fb {
			f = FileBased
		}
		db := store(rt, Options{Flavor: f})
		code := rapid.SampledFrom(codes).Draw(rt, "attribute")
		_, err := db.Add(Dict{Class: ClassCertificate, code: "user1", AttrSerialNumber: []byte{1}})
		valid := code == AttrLabel || code == AttrSubject
		switch {
		case valid && err != nil, !valid && !fb && !errors.Is(err, ErrNoSuchAttr), !valid && fb && err != nil:
			rt.Fatalf("%v add with %s: %v", f, code, err)
		}
		stored := false
		if err == nil {
			r, err := db.CopyMatching(Dict{Class: ClassCertificate, ReturnAttributes: true})
			must(rt, err)
			_, stored = r.(Dict)[code]
		}
		if !stored {
			b.contradicted("%v: Add of a certificate with %s = %q: status %v, attribute stored: false", f, code, "user1", StatusOf(err).Name())
		}
	})
}

// 3. "Delete removes what CopyMatching with the same query returns."
func TestPitfall3Property(t *testing.T) {
	b := &belief{statement: "Delete with a query removes what CopyMatching with it returns"}
	check(t, b, func(rt *rapid.T) {
		fb := rapid.Bool().Draw(rt, "file-based")
		f := DataProtection
		if fb {
			f = FileBased
		}
		db := store(rt, Options{Flavor: f})
		n := rapid.IntRange(1, 4).Draw(rt, "items")
		for i := 0; i < n; i++ {
			_, err := db.Add(genp(AttrService, "s", AttrAccount, fmt.Sprint(i)))
			must(rt, err)
		}
		r, err := db.CopyMatching(genp(AttrService, "s", MatchLimit, MatchLimitAll, ReturnAttributes, true))
		must(rt, err)
		if one, _ := db.CopyMatching(genp(AttrService, "s", ReturnAttributes, true)); one == nil {
			rt.Fatal("CopyMatching without a limit found nothing")
		}
		must(rt, db.Delete(genp(AttrService, "s")))
		left := 0
		if r2, err := db.CopyMatching(genp(AttrService, "s", MatchLimit, MatchLimitAll, ReturnAttributes, true)); err == nil {
			left = len(r2.([]any))
		}
		wantLeft := 0
		if fb {
			wantLeft = n - 1
		}
		if left != wantLeft {
			rt.Fatalf("%v: %d of %d left, want %d", f, left, n, wantLeft)
		}
		// The search without a limit returned one item; the delete
		// removed every match (or one, on the shim).
		if deleted := n - left; deleted != 1 || len(r.([]any)) != 1 {
			b.contradicted("%v: %d matches; CopyMatching without a limit returns 1, Delete without a limit removes %d", f, n, deleted)
		}
	})
}

// mouseIdentity is a deterministic Ed25519 certificate and key.
func mouseIdentity(t *rapid.T, cn string) (*x509.Certificate, ed25519.PrivateKey) {
	seed := sha256.Sum256([]byte("property " + cn))
	key := ed25519.NewKeyFromSeed(seed[:])
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkixName(cn), NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	must(t, err)
	c, err := x509.ParseCertificate(der)
	must(t, err)
	return c, key
}

// 4. "Identities change only when identities are added or deleted."
func TestPitfall4Property(t *testing.T) {
	b := &belief{statement: "identities appear and disappear only when identities are added or deleted"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		cert, key := mouseIdentity(rt, "leaf")
		hasCert, hasKey := false, false
		for _, step := range rapid.SliceOfN(rapid.SampledFrom([]string{"add cert", "add key", "delete cert", "delete key"}), 1, 6).Draw(rt, "steps") {
			before := hasCert && hasKey
			switch step {
			case "add cert":
				if _, err := db.Add(Dict{ValueRef: cert}); err == nil {
					hasCert = true
				}
			case "add key":
				if _, err := db.Add(Dict{ValueRef: key}); err == nil {
					hasKey = true
				}
			case "delete cert":
				if db.Delete(Dict{Class: ClassCertificate}) == nil {
					hasCert = false
				}
			case "delete key":
				if db.Delete(Dict{Class: ClassKey}) == nil {
					hasKey = false
				}
			}
			_, err := db.CopyMatching(Dict{Class: ClassIdentity})
			found := err == nil
			if found != (hasCert && hasKey) {
				rt.Fatalf("after %q: identity found %v, certificate %v, key %v", step, found, hasCert, hasKey)
			}
			if found != before {
				b.contradicted("%q (no identity added or deleted) made an identity %s", step, map[bool]string{true: "appear", false: "disappear"}[found])
			}
		}
	})
}

// 5. "A private key I can find in the keychain, I can use."
func TestPitfall5Property(t *testing.T) {
	b := &belief{statement: "a private key that is listed in the keychain can sign"}
	check(t, b, func(rt *rapid.T) {
		enclave := protect.NewStaticDevice(bytes.Repeat([]byte{7}, 32))
		db := store(rt, Options{SecureEnclave: enclave})
		k, err := db.GenerateKey(Dict{AttrKeyType: KeyTypeECSECPrimeRandom, AttrTokenID: TokenIDSecureEnclave, AttrIsPermanent: true})
		must(rt, err)
		erased := rapid.Bool().Draw(rt, "device erased")
		if erased {
			enclave.Erase()
		}
		_, err = db.CopyMatching(Dict{Class: ClassKey, AttrTokenID: TokenIDSecureEnclave})
		must(rt, err) // listed either way
		digest := sha256.Sum256([]byte("m"))
		_, err = k.Sign(rand.Reader, digest[:], crypto.SHA256)
		if (err == nil) == erased {
			rt.Fatalf("erased %v, sign: %v", erased, err)
		}
		if err != nil {
			b.contradicted("a token key stays listed after the device is erased, and Sign fails with %v", StatusOf(err).Name())
		}
	})
}

// 6. "Update changes any attribute I pass it."
func TestPitfall6Property(t *testing.T) {
	b := &belief{statement: "SecItemUpdate changes any attribute it is given"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		_, err := db.Add(genp(AttrService, "s", AttrAccessControl, AccessibleWhenUnlocked))
		must(rt, err)
		change := rapid.SampledFrom([]Dict{{AttrLabel: "x"}, {AttrAccessControl: AccessibleAfterFirstUnlock}, {AttrTokenID: "t"}, {AttrAccessible: AccessibleAlways}, {AttrComment: "c"}}).Draw(rt, "change")
		err = db.Update(genp(AttrService, "s"), change)
		_, addOnly := change[AttrAccessControl]
		_, tk := change[AttrTokenID]
		if (addOnly || tk) != errors.Is(err, ErrParam) || (!addOnly && !tk && err != nil) {
			rt.Fatalf("update %s: %v", FormatDict(change), err)
		}
		if err != nil {
			b.contradicted("update %s fails with %v: the attribute is add-only", FormatDict(change), StatusOf(err).Name())
		}
	})
}

// 7. "An item my app added, my app can read."
func TestPitfall7Property(t *testing.T) {
	b := &belief{statement: "an item an app added stays readable by the app"}
	groups := []string{"TEAM.a", "TEAM.b", "TEAM.c"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		v1 := rapid.SliceOfNDistinct(rapid.SampledFrom(groups), 1, 3, func(s string) string { return s }).Draw(rt, "v1 groups")
		v2 := rapid.SliceOfNDistinct(rapid.SampledFrom(groups), 1, 3, func(s string) string { return s }).Draw(rt, "v2 groups")
		_, err := db.Client(Entitlements{KeychainAccessGroups: v1}).Add(genp(AttrService, "token"))
		must(rt, err)
		_, err = db.Client(Entitlements{KeychainAccessGroups: v2}).CopyMatching(genp(AttrService, "token"))
		visible := false
		for _, g := range v2 {
			visible = visible || g == v1[0]
		}
		if visible != (err == nil) {
			rt.Fatalf("v1 %v v2 %v: %v", v1, v2, err)
		}
		if err != nil {
			b.contradicted("added by groups %v (into %s), read by groups %v: %v", v1, v1[0], v2, StatusOf(err).Name())
		}
	})
}

// 8. "A search spelled like the item finds it."
func TestPitfall8Property(t *testing.T) {
	b := &belief{statement: "a search for the same word, in any case, finds the item (m_CaseInsensitive or not)"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		acct := rapid.StringMatching(`[a-c]{1,3}`).Draw(rt, "acct")
		_, err := db.Add(genp(AttrService, "s", AttrAccount, acct))
		must(rt, err)
		query := acct
		if rapid.Bool().Draw(rt, "capitalised") {
			query = strings.ToUpper(acct[:1]) + acct[1:]
		}
		_, err = db.CopyMatching(genp(AttrService, "s", AttrAccount, query, MatchCaseInsensitive, rapid.Bool().Draw(rt, "m_CaseInsensitive")))
		if (err == nil) != (query == acct) {
			rt.Fatalf("acct %q, query %q: %v", acct, query, err)
		}
		if err != nil {
			b.contradicted("item acct %q, query acct %q: %v", acct, query, StatusOf(err).Name())
		}
	})
}

// 9. "A failed read means the item is gone."
func TestPitfall9Property(t *testing.T) {
	b := &belief{statement: "a failed read means the item is gone"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		must(rt, db.SetPasscode(nil, []byte("1234")))
		pdmn := rapid.SampledFrom([]string{AccessibleWhenUnlocked, AccessibleAfterFirstUnlock, AccessibleAlways}).Draw(rt, "pdmn")
		_, err := db.Add(genp(AttrService, "s", AttrAccessible, pdmn, ValueData, []byte("pw")))
		must(rt, err)
		if rapid.Bool().Draw(rt, "locked") {
			must(rt, db.Lock())
		}
		_, err = db.CopyMatching(genp(AttrService, "s", ReturnData, true))
		locked := db.State() == Locked && pdmn == AccessibleWhenUnlocked
		if locked != errors.Is(err, ErrInteractionNotAllowed) || (!locked && err != nil) {
			rt.Fatalf("%v %s: %v", db.State(), pdmn, err)
		}
		if err != nil {
			must(rt, db.Unlock([]byte("1234")))
			if _, err2 := db.CopyMatching(genp(AttrService, "s")); err2 == nil {
				b.contradicted("a %s read failed with %v while Locked, and the item was there all along", pdmn, StatusOf(err).Name())
			}
		}
	})
}

// 10. "Reusing a query dictionary for an add is harmless."
func TestPitfall10Property(t *testing.T) {
	b := &belief{statement: "reusing a search dictionary (plus v_Data) as an add dictionary adds the item and returns nothing"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		q := genp(AttrService, "s", AttrAccount, "a")
		extras := []string{}
		if rapid.Bool().Draw(rt, "m_Limit") {
			q[MatchLimit] = MatchLimitOne
			extras = append(extras, MatchLimit)
		}
		if rapid.Bool().Draw(rt, "r_Data") {
			q[ReturnData] = true
			extras = append(extras, ReturnData)
		}
		if rapid.Bool().Draw(rt, "r_Attributes") {
			q[ReturnAttributes] = true
			extras = append(extras, ReturnAttributes)
		}
		q[ValueData] = []byte("pw")
		r, err := db.Add(q)
		_, hasMatch := q[MatchLimit]
		if hasMatch != errors.Is(err, ErrParam) {
			rt.Fatalf("%s: %v", FormatDict(q), err)
		}
		if err != nil || r != nil {
			b.contradicted("reused keys %v: Add returned %s, status %v", extras, Shape(r), StatusOf(err).Name())
		}
	})
}

// 11. "Delete then add is the same as an update."
func TestPitfall11Property(t *testing.T) {
	b := &belief{statement: "delete-then-add is the same as an update"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		r, err := db.Add(genp(AttrService, "s", AttrLabel, "kept?", ValueData, []byte("old"), ReturnPersistentRef, true))
		must(rt, err)
		ref := r.([]byte)
		viaUpdate := rapid.Bool().Draw(rt, "update")
		if viaUpdate {
			must(rt, db.Update(genp(AttrService, "s"), Dict{ValueData: []byte("new")}))
		} else {
			must(rt, db.Delete(genp(AttrService, "s")))
			_, err := db.Add(genp(AttrService, "s", ValueData, []byte("new")))
			must(rt, err)
		}
		_, refErr := db.CopyMatching(Dict{ValuePersistentRef: ref})
		if viaUpdate != (refErr == nil) {
			rt.Fatalf("update %v: old reference: %v", viaUpdate, refErr)
		}
		if refErr != nil {
			b.contradicted("after delete-then-add the old persistent reference answers %v", StatusOf(refErr).Name())
		}
	})
}

// 12. "A certificate's issr is its issuer's DER."
func TestPitfall12Property(t *testing.T) {
	b := &belief{statement: "a certificate item's issr equals the certificate's RawIssuer"}
	check(t, b, func(rt *rapid.T) {
		fb := rapid.Bool().Draw(rt, "file-based")
		f := DataProtection
		if fb {
			f = FileBased
		}
		db := store(rt, Options{Flavor: f})
		cert, _ := mouseIdentity(rt, rapid.SampledFrom([]string{"leaf", "other leaf"}).Draw(rt, "cn"))
		_, err := db.Add(Dict{ValueRef: cert})
		must(rt, err)
		r, err := db.CopyMatching(Dict{Class: ClassCertificate, ReturnAttributes: true})
		must(rt, err)
		issr := r.(Dict)[AttrIssuer].([]byte)
		contents, _ := identity.NormalizeName(cert.RawIssuer)
		want := contents
		if fb {
			want = append([]byte{0x30, byte(len(contents))}, contents...) // the full Name, normalised
		}
		if !bytes.Equal(issr, want) {
			rt.Fatalf("%v issr %x, want %x", f, issr, want)
		}
		if !bytes.Equal(issr, cert.RawIssuer) {
			b.contradicted("%v: issr %x is the Name's contents, RawIssuer is %x", f, issr, cert.RawIssuer)
		}
	})
}

// 13. "A certificate stored in the keychain pairs with its key."
func TestPitfall13Property(t *testing.T) {
	b := &belief{statement: "a certificate in the keychain forms an identity with its private key"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		cert, key := mouseIdentity(rt, "leaf")
		raw := rapid.Bool().Draw(rt, "added as raw bytes")
		var err error
		if raw {
			_, err = db.Add(Dict{Class: ClassCertificate, ValueData: cert.Raw})
		} else {
			_, err = db.Add(Dict{ValueRef: cert})
		}
		must(rt, err)
		_, err = db.Add(Dict{ValueRef: key})
		must(rt, err)
		_, err = db.CopyMatching(Dict{Class: ClassIdentity})
		if raw != errors.Is(err, ErrItemNotFound) || (!raw && err != nil) {
			rt.Fatalf("raw %v: %v", raw, err)
		}
		if err != nil {
			b.contradicted("a certificate added as raw v_Data and its key added by reference form no identity (%v)", StatusOf(err).Name())
		}
	})
}

// 14. "A nil result means there is no item."
func TestPitfall14Property(t *testing.T) {
	b := &belief{statement: "a wrapper's nil result means there is no item"}
	check(t, b, func(rt *rapid.T) {
		db := store(rt, Options{})
		must(rt, db.SetPasscode(nil, []byte("1234")))
		present := rapid.Bool().Draw(rt, "present")
		if present {
			_, err := db.Add(genp(AttrService, "s", ValueData, []byte("pw")))
			must(rt, err)
		}
		locked := rapid.Bool().Draw(rt, "locked")
		if locked {
			must(rt, db.Lock())
		}
		r, err := db.CopyMatching(genp(AttrService, "s", ReturnData, true))
		var wrapped []byte // what a naive wrapper returns
		if err == nil {
			wrapped = r.([]byte)
		}
		switch {
		case present && locked && !errors.Is(err, ErrInteractionNotAllowed),
			!present && !errors.Is(err, ErrItemNotFound),
			present && !locked && err != nil:
			rt.Fatalf("present %v locked %v: %v", present, locked, err)
		}
		if wrapped == nil && present {
			b.contradicted("the item exists, but the wrapper returned nil because the status %v was dropped", StatusOf(err).Name())
		}
	})
}
