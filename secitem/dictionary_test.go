package secitem_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/schema"
	. "github.com/secitemdb/secitemdb/secitem"
)

type opCase struct {
	name  string
	op    string // add, copy, update, delete
	dict  Dict
	attrs Dict // update only
	want  Status
}

func run(c *Client, oc opCase) error {
	switch oc.op {
	case "add":
		_, err := c.Add(oc.dict)
		return err
	case "copy":
		_, err := c.CopyMatching(oc.dict)
		return err
	case "update":
		return c.Update(oc.dict, oc.attrs)
	case "delete":
		return c.Delete(oc.dict)
	}
	panic("unknown op " + oc.op)
}

// seedClient returns a store with one generic password (svce "seed", acct
// "a"), one internet password and one certificate-class item.
func seedClient(t *testing.T) (*DB, *Client) {
	db := openTest(t, nil)
	c := db.Client(Entitlements{KeychainAccessGroups: []string{"G1", "G2"}})
	mustAdd(t, c, genp(AttrService, "seed", AttrAccount, "a", ValueData, []byte("pw")))
	mustAdd(t, c, dictOf(ClassInternetPassword, AttrServer, "example.com", AttrProtocol, ProtocolHTTPS, ValueData, []byte("pw")))
	mustAdd(t, c, dictOf(ClassCertificate, AttrLabel, "raw", AttrSerialNumber, []byte{1}, ValueData, []byte{0x30, 0x00}))
	return db, c
}

// TestDictionaryRules covers apple-reference.md a.1, a.2, a.10 and c.1-c.9:
// every decision a dictionary alone settles, each named after its rule.
func TestDictionaryRules(t *testing.T) {
	many := Dict{Class: ClassGenericPassword}
	for i := 0; i < 129; i++ {
		many[fmt.Sprintf("f_callback%03d", i)] = true
	}
	pref := func(class string) []byte { return append([]byte(class), make([]byte, 16)...) }
	cases := []opCase{
		// a.1 class resolution
		{"class missing is ErrParam", "copy", Dict{AttrService: "seed"}, nil, ErrParam},
		{"class missing in add is ErrParam", "add", Dict{AttrService: "x"}, nil, ErrParam},
		{"class not a string is ErrParam", "copy", Dict{Class: 7}, nil, ErrParam},
		{"unknown class is ErrNoSuchClass", "copy", Dict{Class: "zzzz"}, nil, ErrNoSuchClass},
		{"apls is not a server class", "add", Dict{Class: "apls"}, nil, ErrNoSuchClass},
		{"class from persistent ref alone", "copy", Dict{ValuePersistentRef: pref("genp")}, nil, ErrItemNotFound},
		{"persistent ref of unknown class is ErrNoSuchClass", "copy", Dict{ValuePersistentRef: pref("apls")}, nil, ErrNoSuchClass},
		{"class conflicting with persistent ref is ErrNoSuchClass", "copy", Dict{Class: ClassKey, ValuePersistentRef: pref("genp")}, nil, ErrNoSuchClass},
		{"persistent ref of wrong length is ErrParam", "copy", Dict{ValuePersistentRef: []byte("genp1234")}, nil, ErrParam},
		// a.10 unknown keys
		{"unknown 4-char key is ErrNoSuchAttr", "copy", genp("zzzz", "x"), nil, ErrNoSuchAttr},
		{"key attribute on a password is ErrNoSuchAttr", "add", genp(AttrApplicationTag, "t"), nil, ErrNoSuchAttr},
		{"password attribute on a certificate is ErrNoSuchAttr", "copy", dictOf(ClassCertificate, AttrAccount, "a"), nil, ErrNoSuchAttr},
		{"application tag on a certificate is ErrNoSuchAttr (pitfall 2)", "add", dictOf(ClassCertificate, AttrApplicationTag, "user1", ValueData, []byte{1}), nil, ErrNoSuchAttr},
		{"nleg is ignored", "copy", genp(UseDataProtectionKeychain, true, AttrService, "seed"), nil, 0},
		{"one-letter key is ErrParam", "copy", genp("x", 1), nil, ErrParam},
		{"unknown c key is ErrParam", "copy", genp("classy", 1), nil, ErrParam},
		{"unknown prefix is ErrParam", "copy", genp("zebra", 1), nil, ErrParam},
		{"unknown r_ key is ErrParam", "copy", genp("r_Foo", true), nil, ErrParam},
		{"unknown v_ key is ErrParam", "copy", genp("v_Foo", true), nil, ErrParam},
		{"unknown u_ key is ErrParam", "copy", genp("u_Foo", true), nil, ErrParam},
		{"u_ItemList is ErrParam", "copy", genp(UseItemList, []any{}), nil, ErrParam},
		{"f keys are ignored", "copy", genp("f_callback", 1, AttrService, "seed"), nil, 0},
		{"unknown m key is ignored by CopyMatching", "copy", genp("m_Whatever", 1, AttrService, "seed"), nil, 0},
		{"more than 128 non-attribute keys is ErrParam", "copy", many, nil, ErrParam},
		{"reserved clip is ErrParam", "add", genp(AttrAppClipItem, 1), nil, ErrParam},
		// a.2 conversions
		{"data where a string is needed must be UTF-8", "copy", genp(AttrAccessGroup, []byte{0xff}), nil, ErrParam},
		{"a date attribute needs a time.Time", "copy", genp(AttrCreationDate, "yesterday"), nil, ErrParam},
		{"a number attribute rejects data", "copy", genp(AttrCreator, []byte{1}), nil, ErrParam},
		{"a blob attribute rejects a float", "copy", genp(AttrService, 1.5), nil, ErrParam},
		{"a nil value is ErrParam", "copy", genp(AttrService, nil), nil, ErrParam},
		{"an unknown protection class is ErrParam", "add", genp(AttrAccessible, "xx"), nil, ErrParam},
		{"an unknown protection class in a query is ErrParam", "copy", genp(AttrAccessible, "f"), nil, ErrParam},
		{"a uint64 too large for int64 is ErrParam", "copy", genp(AttrCreator, uint64(1<<63)), nil, ErrParam},
		{"sha1 must be 20 bytes", "copy", genp(AttrSHA1, []byte{1, 2}), nil, ErrParam},
		{"musr must be 16 bytes or empty", "copy", genp(AttrMultiUser, []byte{1}), nil, ErrParam},
		{"data attribute accepts a string", "copy", dictOf(ClassCertificate, AttrSerialNumber, "\x01"), nil, 0},
		// c.2 match keys
		{"match key in add is ErrParam (decisions 2)", "add", genp(MatchLimit, MatchLimitOne, AttrService, "n1"), nil, ErrParam},
		{"unknown match key in add is ErrParam", "add", genp("m_Whatever", 1, AttrService, "n2"), nil, ErrParam},
		{"match key in update is ErrParam", "update", genp(MatchLimit, MatchLimitAll), Dict{AttrLabel: "x"}, ErrParam},
		{"match limit all in delete is ErrParam", "delete", genp(MatchLimit, MatchLimitAll), nil, ErrParam},
		{"any match key in delete is ErrParam", "delete", genp(MatchCaseInsensitive, true), nil, ErrParam},
		{"match limit must be one, all or a positive number", "copy", genp(MatchLimit, "m_LimitSome"), nil, ErrParam},
		{"match limit zero is ErrParam", "copy", genp(MatchLimit, 0), nil, ErrParam},
		{"match limit bool is ErrParam", "copy", genp(MatchLimit, true), nil, ErrParam},
		{"match limit number is accepted", "copy", genp(MatchLimit, 5, AttrService, "seed"), nil, 0},
		{"issuers on passwords is ErrUnimplemented", "copy", genp(MatchIssuers, []any{[]byte{0x30, 0}}), nil, ErrUnimplemented},
		{"issuers must be an array of data", "copy", dictOf(ClassCertificate, MatchIssuers, "x"), nil, ErrParam},
		{"valid-on-date on passwords is ErrUnimplemented", "copy", genp(MatchValidOnDate, time.Now()), nil, ErrUnimplemented},
		{"valid-on-date must be a date", "copy", dictOf(ClassCertificate, MatchValidOnDate, "now"), nil, ErrParam},
		{"host match on generic passwords is ErrUnimplemented", "copy", genp(MatchHostOrSubdomainOfHost, "example.com"), nil, ErrUnimplemented},
		{"host match on internet passwords", "copy", dictOf(ClassInternetPassword, MatchHostOrSubdomainOfHost, "example.com"), nil, 0},
		{"host match does not match a different host", "copy", dictOf(ClassInternetPassword, MatchHostOrSubdomainOfHost, "ample.com"), nil, ErrItemNotFound},
		{"policy is ErrUnimplemented (decisions 5)", "copy", dictOf(ClassCertificate, MatchPolicy, "x"), nil, ErrUnimplemented},
		{"trusted-only must be a bool", "copy", dictOf(ClassCertificate, MatchTrustedOnly, "x"), nil, ErrParam},
		{"trusted-only is ErrUnimplemented (decisions 5)", "copy", dictOf(ClassCertificate, MatchTrustedOnly, true), nil, ErrUnimplemented},
		{"case-insensitive is accepted and ignored", "copy", genp(MatchCaseInsensitive, true, AttrService, "seed"), nil, 0},
		{"case-insensitive does not make matching case-insensitive", "copy", genp(MatchCaseInsensitive, true, AttrService, "SEED"), nil, ErrItemNotFound},
		{"case-insensitive must be a bool", "copy", genp(MatchCaseInsensitive, "yes"), nil, ErrParam},
		{"subject-contains is accepted and ignored", "copy", genp(MatchSubjectContains, "x", AttrService, "seed"), nil, 0},
		// c.4 return keys
		{"return key must be a bool, not a number", "copy", genp(ReturnData, 1), nil, ErrParam},
		{"return key must be a bool, not a string", "copy", genp(ReturnAttributes, "true"), nil, ErrParam},
		{"return key in an update query is ErrParam", "update", genp(ReturnData, true), Dict{AttrLabel: "x"}, ErrParam},
		{"return key in a delete is ignored", "delete", genp(ReturnData, true, AttrService, "seed"), nil, 0},
		// c.5 add
		{"v_Data must be []byte in add", "add", genp(ValueData, "secret"), nil, ErrParam},
		{"v_PersistentRef in add is ErrParam", "add", genp(ValuePersistentRef, pref("genp")), nil, ErrParam},
		{"an add without v_Data is legal", "add", genp(AttrService, "nodata"), nil, 0},
		{"conflicting pdmn and accc is ErrParam", "add", genp(AttrAccessible, "ak", AttrAccessControl, "ck"), nil, ErrParam},
		{"u_AuthUIS only in CopyMatching", "add", genp(UseAuthenticationUI, UseAuthenticationUISkip), nil, ErrParam},
		{"u_AuthUIS in CopyMatching", "copy", genp(UseAuthenticationUI, UseAuthenticationUISkip, AttrService, "seed"), nil, 0},
		{"u_AuthUI needs a known value", "copy", genp(UseAuthenticationUI, "u_AuthUIX"), nil, ErrParam},
		// c.6 search
		{"persistent ref with attributes in CopyMatching is ErrParam", "copy", genp(ValuePersistentRef, pref("genp"), AttrService, "seed"), nil, ErrParam},
		{"v_Data in a query is accepted and not a filter", "copy", genp(ValueData, []byte("nope"), AttrService, "seed"), nil, 0},
		// c.7 update dictionary
		{"class in attributesToUpdate is ErrNoSuchAttr", "update", genp(AttrService, "seed"), Dict{Class: ClassGenericPassword}, ErrNoSuchAttr},
		{"return key in attributesToUpdate is ErrNoSuchAttr", "update", genp(AttrService, "seed"), Dict{ReturnData: true}, ErrNoSuchAttr},
		{"unknown attribute in attributesToUpdate is ErrNoSuchAttr", "update", genp(AttrService, "seed"), Dict{"zzzz": 1}, ErrNoSuchAttr},
		{"wrong-class attribute in attributesToUpdate is ErrNoSuchAttr", "update", genp(AttrService, "seed"), Dict{AttrApplicationTag: "t"}, ErrNoSuchAttr},
		{"accc is add-only (decisions 4)", "update", genp(AttrService, "seed"), Dict{AttrAccessControl: "ak"}, ErrParam},
		{"tkid is add-only (decisions 4)", "update", genp(AttrService, "seed"), Dict{AttrTokenID: "x"}, ErrParam},
		{"musr is add-only (decisions 4)", "update", genp(AttrService, "seed"), Dict{AttrMultiUser: []byte{}}, ErrParam},
		{"ggrp is add-only (decisions 4)", "update", genp(AttrService, "seed"), Dict{AttrSharingGroup: "g"}, ErrParam},
		{"nil in attributesToUpdate is ErrParam", "update", genp(AttrService, "seed"), Dict{AttrLabel: nil}, ErrParam},
		{"v_Data in attributesToUpdate must be []byte", "update", genp(AttrService, "seed"), Dict{ValueData: "pw"}, ErrParam},
		{"pdmn can be updated", "update", genp(AttrService, "seed"), Dict{AttrAccessible: AccessibleAfterFirstUnlock}, 0},
		{"mdat in attributesToUpdate is ignored", "update", genp(AttrService, "seed"), Dict{AttrModificationDate: time.Unix(0, 0)}, 0},
		// e access groups
		{"add to a group outside the list is ErrMissingEntitlement", "add", genp(AttrAccessGroup, "G9"), nil, ErrMissingEntitlement},
		{"search in a group outside the list is ErrMissingEntitlement", "copy", genp(AttrAccessGroup, "G9"), nil, ErrMissingEntitlement},
		{"update in a group outside the list is ErrMissingEntitlement", "update", genp(AttrAccessGroup, "G9"), Dict{AttrLabel: "x"}, ErrMissingEntitlement},
		{"update into a group outside the list is ErrMissingEntitlement", "update", genp(AttrService, "seed"), Dict{AttrAccessGroup: "G9"}, ErrMissingEntitlement},
		{"delete in a group outside the list is ErrMissingEntitlement", "delete", genp(AttrAccessGroup, "G9"), nil, ErrMissingEntitlement},
		{"search in the second group of the list", "copy", genp(AttrAccessGroup, "G2"), nil, ErrItemNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, c := seedClient(t)
			wantStatus(t, run(c, tc), tc.want)
		})
	}
}

// TestErrorDetailNamesTheKey checks that Error.Detail names the key at
// fault and Error.Op the operation.
func TestErrorDetailNamesTheKey(t *testing.T) {
	db := openTest(t, nil)
	_, err := db.Add(dictOf(ClassCertificate, AttrApplicationTag, "user1"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *secitem.Error", err)
	}
	if e.Op != "SecItemAdd" || e.Status != ErrNoSuchAttr {
		t.Fatalf("got Op %q Status %d", e.Op, e.Status)
	}
	if want := `attribute "atag" is not valid for class "cert"`; e.Detail != want {
		t.Fatalf("Detail = %q, want %q", e.Detail, want)
	}
	if got := ErrItemNotFound.Error(); got != "errSecItemNotFound (-25300): the item could not be found" {
		t.Fatalf("Status.Error() = %q", got)
	}
}

// TestAttributeConstantsExist checks every attribute constant against the
// schema table: each names an attribute of at least one class.
func TestAttributeConstantsExist(t *testing.T) {
	attrs := []string{AttrCreationDate, AttrModificationDate, AttrLabel, AttrAccessGroup, AttrAccessible,
		AttrSynchronizable, AttrTombstone, AttrSHA1, AttrSyncViewHint, AttrTokenID, AttrAccessControl,
		AttrMultiUser, AttrSysBound, AttrPCSPlaintextServiceIdentifier, AttrPCSPlaintextPublicKey,
		AttrPCSPlaintextPublicIdentity, AttrSharingGroup, AttrSyncUUID, AttrAppClipItem, AttrDescription,
		AttrComment, AttrCreator, AttrType, AttrScriptCode, AttrAlias, AttrIsInvisible, AttrIsNegative,
		AttrHasCustomIcon, AttrProtected, AttrAccount, AttrService, AttrGeneric, AttrSecurityDomain,
		AttrServer, AttrProtocol, AttrAuthenticationType, AttrPort, AttrPath, DataInetExtraNotes,
		DataInetExtraHistory, DataInetExtraClientDefined0, DataInetExtraClientDefined1,
		DataInetExtraClientDefined2, DataInetExtraClientDefined3, AttrCertificateType,
		AttrCertificateEncoding, AttrSubject, AttrIssuer, AttrSerialNumber, AttrSubjectKeyID,
		AttrPublicKeyHash, AttrKeyClass, AttrIsPermanent, AttrIsPrivate, AttrIsModifiable,
		AttrApplicationLabel, AttrApplicationTag, AttrKeyCreator, AttrKeyType, AttrKeySizeInBits,
		AttrEffectiveKeySize, AttrStartDate, AttrEndDate, AttrIsSensitive, AttrWasAlwaysSensitive,
		AttrIsExtractable, AttrWasNeverExtractable, AttrCanEncrypt, AttrCanDecrypt, AttrCanDerive,
		AttrCanSign, AttrCanVerify, AttrCanSignRecover, AttrCanVerifyRecover, AttrCanWrap, AttrCanUnwrap}
	for _, code := range attrs {
		found := false
		for _, class := range []string{ClassGenericPassword, ClassInternetPassword, ClassCertificate, ClassKey} {
			if schema.Lookup(class).Attr(code) != nil {
				found = true
			}
		}
		if !found {
			t.Errorf("constant %q names no attribute", code)
		}
	}
}
