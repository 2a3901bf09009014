package pitfalls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/secitemdb/secitemdb/identity"
	. "github.com/secitemdb/secitemdb/secitem"
)

var all = []*Pitfall{
	{
		Number: 1, Name: "query-vs-uniqueness", Title: "Queries versus uniqueness constraints",
		Summary: "a search that finds nothing does not mean an add will succeed",
		Lesson:  "a search matches every attribute it names, but only the class's primary key (for genp: acct, svce, agrp, sync and a few hidden ones) decides uniqueness, so \"not found\" does not imply \"add will succeed\".",
		Right:   "look the item up by its primary key alone (class, svce, acct, and agrp if you use groups); update it when it exists, add it otherwise; and answer errSecDuplicateItem from an add with an update.",
		scenario: func(s *Session) {
			s.Say("A generic password exists for service AYS, account mrgumby, with gena = \"A\".")
			s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "AYS", AttrAccount: "mrgumby", AttrGeneric: "A", ValueData: []byte("opendoor")})
			s.Say("The app searches with an extra, non-key attribute:")
			s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "AYS", AttrAccount: "mrgumby", AttrGeneric: "SecItemHints"})
			s.Say("Explain names the cause, and what an add would do:")
			s.Explain(nil, false, Dict{Class: ClassGenericPassword, AttrService: "AYS", AttrAccount: "mrgumby", AttrGeneric: "SecItemHints"})
			s.Say("The app did not ask; it concludes the item is missing and adds the same dictionary with the password:")
			s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "AYS", AttrAccount: "mrgumby", AttrGeneric: "SecItemHints", ValueData: []byte("opendoor")})
			s.Say("The add collides: gena is not part of the primary key, so both dictionaries name the same item.")
		},
	},
	{
		Number: 2, Name: "erroneous-attributes", Title: "Erroneous attributes", Differs: true,
		Summary: "an attribute the class does not have is an error, or silently dropped by the macOS shim",
		Lesson:  "use only attributes of the item's class: the data protection keychain rejects the others with errSecNoSuchAttr, and the macOS file-based shim drops them silently, so a search by them returns the first item of the class: right with one user, wrong with two.",
		Right:   "keep per-user data in an attribute the class has (a certificate's label), or in a generic password that names the certificate by its persistent reference.",
		scenario: func(s *Session) {
			s.Say("Two users' certificates are added with atag (application tag, a key-only attribute) naming their owner:")
			for i, user := range []string{"alice", "bob"} {
				s.Add(nil, Dict{Class: ClassCertificate, AttrApplicationTag: user, AttrLabel: user + "'s certificate", AttrSerialNumber: []byte{byte(i + 1)}, ValueData: []byte{0x30, 0x00}})
			}
			s.Say("The app looks up bob's certificate by its tag:")
			r, err := s.Find(nil, Dict{Class: ClassCertificate, AttrApplicationTag: "bob", ReturnAttributes: true})
			if err == nil {
				s.Say("It got %v.", r.(Dict)[AttrLabel])
			}
		},
	},
	{
		Number: 3, Name: "match-limit-defaults", Title: "Context matters: match-limit defaults", Differs: true,
		Summary: "CopyMatching returns one item by default; Delete removes every match",
		Lesson:  "a dictionary that asks for results (CopyMatching) defaults to m_LimitOne, one item even when many match; a pure query (Update, Delete) acts on every match, and Delete without a limit deletes them all. The macOS shim's Delete without a limit deletes one.",
		Right:   "say what you mean: m_LimitAll when you want every match, and a query precise enough to name exactly the items you mean to update or delete.",
		scenario: func(s *Session) {
			s.Say("Three tokens share a service:")
			for _, a := range []string{"a", "b", "c"} {
				s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "token", AttrAccount: a})
			}
			s.Say("A search without a limit returns one of them:")
			s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "token", ReturnAttributes: true})
			s.Say("With m_LimitAll, all three:")
			s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "token", MatchLimit: MatchLimitAll, ReturnAttributes: true})
			s.Say("A delete with the same query and no limit:")
			s.Delete(nil, Dict{Class: ClassGenericPassword, AttrService: "token"})
			r, err := s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "token", MatchLimit: MatchLimitAll, ReturnAttributes: true})
			if err == nil {
				s.Say("%d tokens are left.", len(r.([]any)))
			} else {
				s.Say("No token is left.")
			}
		},
	},
	{
		Number: 4, Name: "identities-not-stored", Title: "Digital identities are not stored",
		Summary: "an identity appears and disappears with its certificate and private key",
		Lesson:  "the keychain stores a certificate and a private key; an identity exists whenever a certificate's pkhh equals a private key's klbl. Adding either half can \"add\" an identity, deleting either \"removes\" it.",
		Right:   "add identities by reference (v_Ref with the certificate and key, or the identity); when a certificate and key do not pair, compare the certificate's pkhh with the key's klbl.",
		scenario: func(s *Session) {
			cert, key := s.mouseLeaf("Mouse Leaf")
			s.Say("The certificate alone is no identity:")
			s.Add(nil, Dict{ValueRef: cert})
			s.Find(nil, Dict{Class: ClassIdentity})
			s.Say("Adding its private key makes one appear:")
			s.Add(nil, Dict{ValueRef: key})
			if r, err := s.Find(nil, Dict{Class: ClassIdentity, ReturnRef: true}); err == nil {
				s.Say("The identity joins certificate %q with its private key.", r.(*identity.Identity).Certificate.Subject.CommonName)
			}
			c, _ := s.db.CopyMatching(Dict{Class: ClassCertificate, ReturnAttributes: true})
			k, _ := s.db.CopyMatching(Dict{Class: ClassKey, ReturnAttributes: true})
			s.Say("They pair because the certificate's pkhh equals the key's klbl: %v.", hex.EncodeToString(c.(Dict)[AttrPublicKeyHash].([]byte)) == hex.EncodeToString(k.(Dict)[AttrApplicationLabel].([]byte)))
			s.Say("Deleting the key removes the identity:")
			s.Delete(nil, Dict{Class: ClassKey})
			s.Find(nil, Dict{Class: ClassIdentity})
		},
	},
	{
		Number: 5, Name: "secure-enclave", Title: "Keys are protected by the Secure Enclave, not stored in it",
		Summary: "a token key lives in the item database; erasing the device makes it unusable",
		Lesson:  "a Secure Enclave key (tkid com.apple.setoken) is an ordinary keychain item whose key material is wrapped by a device-bound key; its private bytes are never returned, and erasing the device-bound key leaves the item listed but unusable for good.",
		Right:   "use token keys through their Signer only; treat an item whose key no longer works (errSecDecode) as gone for good and enroll a new key.",
		scenario: func(s *Session) {
			params := Dict{AttrKeyType: KeyTypeECSECPrimeRandom, AttrKeySizeInBits: 256, AttrTokenID: TokenIDSecureEnclave,
				PrivateKeyAttrs: Dict{AttrIsPermanent: true, AttrApplicationTag: "signing"}}
			r, _ := s.call(nil, "SecKeyCreateRandomKey", []Dict{params}, func() (any, error) { return s.db.GenerateKey(params) })
			key := r.(crypto.Signer)
			digest := sha256.Sum256([]byte("message"))
			sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
			s.must(err)
			s.Say("It signs, and the signature verifies with its public key: %v.", ecdsa.VerifyASN1(key.Public().(*ecdsa.PublicKey), digest[:], sig))
			if d, err := s.Find(nil, Dict{Class: ClassKey, AttrApplicationTag: "signing", ReturnData: true}); err == nil {
				s.Say("Its data is an opaque handle starting %q, not the private key.", string(d.([]byte)[:4]))
			}
			_, err = x509.MarshalPKCS8PrivateKey(key)
			s.Say("Exporting it fails: %v.", err != nil)
			s.enclave.Erase()
			s.Say("(the device is erased: the Secure Enclave's key is gone)")
			_, err = key.Sign(rand.Reader, digest[:], crypto.SHA256)
			s.Say("Signing now fails with %s.", statusName(StatusOf(err)))
			s.Find(nil, Dict{Class: ClassKey, AttrTokenID: TokenIDSecureEnclave})
			s.Say("The item is still listed, and will never work again.")
		},
	},
	{
		Number: 6, Name: "add-only-attributes", Title: "Add-only attributes",
		Summary: "access control is fixed when the item is added",
		Lesson:  "some attributes can only be set by Add: access control (accc), token id, multi-user and sharing group. secitemdb answers an update of one of them with errSecParam; pdmn can be updated, and the item is re-encrypted under the new class, as Apple's current server does.",
		Right:   "choose pdmn (or accc) when adding the item and do not change it afterwards; to change access control, add a new item and delete the old one deliberately.",
		scenario: func(s *Session) {
			s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccessControl: AccessibleWhenUnlocked, ValueData: []byte("token")})
			s.Say("Loosening its access control with an update:")
			s.Update(nil, Dict{Class: ClassGenericPassword, AttrService: "api"}, Dict{AttrAccessControl: AccessibleAfterFirstUnlock})
			s.Say("Updating pdmn instead re-encrypts the item under the new class:")
			s.Update(nil, Dict{Class: ClassGenericPassword, AttrService: "api"}, Dict{AttrAccessible: AccessibleAfterFirstUnlock})
			if r, err := s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "api", ReturnAttributes: true}); err == nil {
				s.Say("pdmn is now %v.", r.(Dict)[AttrAccessible])
			}
		},
	},
	{
		Number: 7, Name: "entitlement-changes", Title: "Lost keychain items: entitlement changes",
		Summary: "an app that drops an access group loses the items in it",
		Lesson:  "a new item without agrp goes into the first group of the caller's list; a later version whose entitlements drop that group cannot see the items (errSecItemNotFound), and naming the group explicitly is errSecMissingEntitlement.",
		Right:   "set agrp explicitly on every add, keep the groups your items live in, and migrate items (update agrp) before dropping a group.",
		scenario: func(s *Session) {
			v1 := s.App("app v1", "SKMME9E2Y8.groupA", "SKMME9E2Y8.groupB")
			v2 := s.App("app v2", "SKMME9E2Y8.groupB")
			s.Say("Version 1 has keychain-access-groups [groupA, groupB] and adds a token without agrp:")
			if r, err := s.Add(v1, Dict{Class: ClassGenericPassword, AttrService: "token", ReturnAttributes: true}); err == nil {
				s.Say("It went into the first group, %v.", r.(Dict)[AttrAccessGroup])
			}
			s.Say("Version 2 dropped groupA:")
			s.Find(v2, Dict{Class: ClassGenericPassword, AttrService: "token"})
			s.Find(v2, Dict{Class: ClassGenericPassword, AttrService: "token", AttrAccessGroup: "SKMME9E2Y8.groupA"})
			s.Say("Version 2's own Explain knows nothing of groupA; the operator's view names it:")
			s.Explain(v2, false, Dict{Class: ClassGenericPassword, AttrService: "token"})
			s.Explain(v2, true, Dict{Class: ClassGenericPassword, AttrService: "token"})
		},
	},
	{
		Number: 8, Name: "query-confusion", Title: "Lost keychain items, redux: query confusion",
		Summary: "when a search finds nothing, dump every item and compare",
		Lesson:  "when CopyMatching does not find an item you are sure exists, list every item of the class with all its attributes and compare them with the query, attribute by attribute; matching is exact and case-sensitive, and m_CaseInsensitive is accepted and ignored.",
		Right:   "run `secitemctl explain QUERY` (Client.Explain), which compares every item with the query for you, or `secitemctl dump` and diff; build queries from the same constants that built the item.",
		scenario: func(s *Session) {
			s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "com.example.api", AttrAccount: "alice", ValueData: []byte("token")})
			s.Say("The app searches for its user, spelled as typed at login:")
			s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "com.example.api", AttrAccount: "Alice"})
			s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "com.example.api", AttrAccount: "Alice", MatchCaseInsensitive: true})
			s.Say("Dump every item of the class and compare:")
			if r, err := s.Find(nil, Dict{Class: ClassGenericPassword, MatchLimit: MatchLimitAll, ReturnAttributes: true}); err == nil {
				for _, it := range r.([]any) {
					d := it.(Dict)
					s.Say("  item: svce %q acct %q agrp %q", d[AttrService], d[AttrAccount], d[AttrAccessGroup])
				}
			}
			s.Say("The query's acct \"Alice\" is not the item's \"alice\". Explain says so at once:")
			s.Explain(nil, false, Dict{Class: ClassGenericPassword, AttrService: "com.example.api", AttrAccount: "Alice"})
		},
	},
	{
		Number: 9, Name: "data-protection-background", Title: "Data protection and background execution", Differs: true,
		Summary: "a read that fails while locked is not a missing item: deleting then destroys the credential",
		Lesson:  "while an item's class key is unavailable, CopyMatching, Add and Update fail with errSecInteractionNotAllowed, but Delete needs no key and succeeds. Code that \"resets\" on any read failure destroys the user's credential when it runs in the background while locked. The macOS shim answers errSecItemNotFound instead, which makes the mistake easier still.",
		Right:   "on errSecInteractionNotAllowed, stop and retry after the device unlocks; never delete on a failed read; use AfterFirstUnlock (ck) for items background work needs.",
		scenario: func(s *Session) {
			s.SetPasscode("123456")
			s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice", ValueData: []byte("refresh-token")})
			s.Lock()
			s.Say("A background refresh reads the token:")
			_, err := s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice", ReturnData: true})
			s.Say("Explain would have told it the item is there, only locked:")
			s.Explain(nil, false, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice"})
			if err != nil {
				s.Say("The naive code treats the failure as a missing or corrupt item and starts over:")
				s.Delete(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice"})
			}
			s.Unlock("123456")
			s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice", ReturnData: true})
			s.Say("The user's credential is gone.")
		},
	},
	{
		Number: 10, Name: "reusing-dictionaries", Title: "Avoid reusing dictionaries",
		Summary: "keys of one call leak into the next",
		Lesson:  "a query dictionary reused as an add dictionary brings its match and return keys (and any search-only attributes) along: a match key makes the add fail (secitemdb; Apple's server reports success and stores nothing), a return key changes what the add returns.",
		Right:   "build a fresh dictionary for each call, from the attributes that call needs.",
		scenario: func(s *Session) {
			q := Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice", ReturnData: true, MatchLimit: MatchLimitOne}
			s.Find(nil, q)
			s.Say("Not found: the app reuses the query to add the item:")
			q[ValueData] = []byte("token")
			s.Add(nil, q)
			delete(q, MatchLimit)
			s.Say("Without the match limit the add works, but r_Data came along and the add returns the secret:")
			s.Add(nil, q)
		},
	},
	{
		Number: 11, Name: "prefer-update", Title: "Prefer Update to delete-then-add",
		Summary: "delete-then-add changes the persistent reference and loses attributes",
		Lesson:  "Update keeps the item's persistent reference and every attribute it does not name; delete followed by add makes a new item with a new reference and drops whatever the add forgot.",
		Right:   "change items with SecItemUpdate.",
		scenario: func(s *Session) {
			r, _ := s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "mail", AttrAccount: "alice", AttrLabel: "Work account", ValueData: []byte("old"), ReturnPersistentRef: true})
			ref := r.([]byte)
			s.Say("A new password, written by delete then add:")
			s.Delete(nil, Dict{Class: ClassGenericPassword, AttrService: "mail", AttrAccount: "alice"})
			s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "mail", AttrAccount: "alice", ValueData: []byte("new")})
			s.Find(nil, Dict{ValuePersistentRef: ref})
			if r, err := s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "mail", ReturnAttributes: true}); err == nil {
				_, has := r.(Dict)[AttrLabel]
				s.Say("The old reference finds nothing, and the label survived: %v.", has)
			}
			s.Say("The same change with Update:")
			r, _ = s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "calendar", AttrAccount: "alice", AttrLabel: "Work calendar", ValueData: []byte("old"), ReturnPersistentRef: true})
			ref = r.([]byte)
			s.Update(nil, Dict{Class: ClassGenericPassword, AttrService: "calendar", AttrAccount: "alice"}, Dict{ValueData: []byte("new")})
			if r, err := s.Find(nil, Dict{ValuePersistentRef: ref, ReturnAttributes: true}); err == nil {
				s.Say("The reference still works and the label is %q.", r.(Dict)[AttrLabel])
			}
		},
	},
	{
		Number: 12, Name: "issuer", Title: "Complex attributes: the issuer", Differs: true,
		Summary: "issr holds normalised Name contents, not the certificate's issuer DER",
		Lesson:  "a certificate's issr and subj hold the DER of the X.509 Name without its outer SEQUENCE, normalised; the macOS file-based keychain returns the full Name. Both accept the full DER Name in a query. The file-based keychain also answers an add that returns attributes with an array.",
		Right:   "query by issuer with the certificate's RawIssuer (or the stored attribute as returned), never by bytes you built by hand; handle both result shapes of Add when the code may run on macOS.",
		scenario: func(s *Session) {
			cert, _ := s.mouseLeaf("Mouse Leaf")
			s.Say("A certificate issued by CN=MouseCA, C=GB is added by reference, returning its attributes:")
			s.Add(nil, Dict{ValueRef: cert, ReturnAttributes: true})
			if r, err := s.Find(nil, Dict{Class: ClassCertificate, ReturnAttributes: true}); err == nil {
				s.Say("Its issr: %s", words(r.(Dict)[AttrIssuer].([]byte)))
			}
			s.Say("A query with the full DER Name of the issuer finds it:")
			s.Find(nil, Dict{Class: ClassCertificate, AttrIssuer: cert.RawIssuer})
		},
	},
	{
		Number: 13, Name: "import-then-add", Title: "Import, then add",
		Summary: "raw certificate or key bytes get default attributes only",
		Lesson:  "an item added with raw bytes under v_Data gets default attributes only (no pkhh, empty issuer and serial), so it pairs with nothing; parsing first and adding the object under v_Ref derives the attributes, and reports a parse error apart from any keychain error.",
		Right:   "parse (x509.ParseCertificate, x509.ParsePKCS8PrivateKey), check the error, then add with v_Ref.",
		scenario: func(s *Session) {
			cert, key := s.mouseLeaf("Mouse Leaf")
			s.Say("The certificate's raw bytes, added as data:")
			if r, err := s.Add(nil, Dict{Class: ClassCertificate, ValueData: cert.Raw, ReturnAttributes: true}); err == nil {
				_, has := r.(Dict)[AttrPublicKeyHash]
				s.Say("pkhh derived: %v; issuer: %d bytes.", has, len(r.(Dict)[AttrIssuer].([]byte)))
			}
			s.Add(nil, Dict{ValueRef: key})
			s.Find(nil, Dict{Class: ClassIdentity})
			s.Say("Parsing is a separate step with its own error, before any keychain call:")
			_, err := x509.ParseCertificate([]byte("not a certificate"))
			s.Say("x509.ParseCertificate(garbage) fails: %v", err != nil)
			s.Say("The parsed certificate, added by reference:")
			s.Delete(nil, Dict{Class: ClassCertificate})
			if r, err := s.Add(nil, Dict{ValueRef: cert, ReturnAttributes: true}); err == nil {
				_, has := r.(Dict)[AttrPublicKeyHash]
				s.Say("pkhh derived: %v; issuer: %d bytes.", has, len(r.(Dict)[AttrIssuer].([]byte)))
			}
			s.Find(nil, Dict{Class: ClassIdentity})
		},
	},
	{
		Number: 14, Name: "think-before-wrapping", Title: "Think before wrapping",
		Summary: "a wrapper that hides the status makes every failure look the same",
		Lesson:  "a wrapper must keep the dictionaries and the status visible: \"no password\" from a locked device (-25308) and from a missing item (-25300) call for opposite reactions, and only the status tells them apart.",
		Right:   "return the error as is (errors.Is(err, secitem.ErrInteractionNotAllowed) and friends work on it), and keep the call trace (Options.Logger) available for diagnosis.",
		scenario: func(s *Session) {
			naive := func(account string) []byte {
				r, err := s.db.CopyMatching(Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: account, ReturnData: true})
				if err != nil {
					return nil
				}
				return r.([]byte)
			}
			s.SetPasscode("123456")
			s.Add(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice", ValueData: []byte("token")})
			s.Lock()
			s.Say("A naive wrapper returns nil on any error: alice (locked) gives %v, bob (absent) gives %v. Which one should sign in again?", naive("alice") == nil, naive("bob") == nil)
			s.Say("The raw calls say why:")
			_, err := s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "alice", ReturnData: true})
			s.Say("errors.Is(err, ErrInteractionNotAllowed): %v", errors.Is(err, ErrInteractionNotAllowed))
			_, err = s.Find(nil, Dict{Class: ClassGenericPassword, AttrService: "api", AttrAccount: "bob", ReturnData: true})
			s.Say("errors.Is(err, ErrItemNotFound): %v", errors.Is(err, ErrItemNotFound))
		},
	},
}

// words prints bytes as hex in groups of four, as pitfalls.md does.
func words(b []byte) string {
	h := hex.EncodeToString(b)
	var out []string
	for len(h) > 8 {
		out = append(out, h[:8])
		h = h[8:]
	}
	return strings.Join(append(out, h), " ")
}
