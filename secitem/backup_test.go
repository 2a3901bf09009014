package secitem_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/protect"
	. "github.com/secitemdb/secitemdb/secitem"
)

func backupSource(t *testing.T) (*DB, *fakeClock) {
	clock := newClock()
	db := openTest(t, &Options{Now: clock.Now, PasscodeCost: cheapCost, SecureEnclave: protect.NewStaticDevice(bytes.Repeat([]byte{3}, 32))})
	wantStatus(t, db.SetPasscode(nil, passA), 0)
	c := db.Client(Entitlements{KeychainAccessGroups: []string{"G1", "G2"}})
	for _, p := range protections {
		mustAdd(t, c, genp(AttrService, "s", AttrAccount, p, AttrAccessible, p, AttrAccessGroup, "G2", ValueData, []byte("pw-"+p)))
	}
	mustAdd(t, c, dictOf(ClassInternetPassword, AttrServer, "example.com", ValueData, []byte("inet"), DataInetExtraNotes, []byte("notes")))
	mustAdd(t, c, Dict{ValueRef: idOf(t, "leaf-p384", "leaf-p384")})
	mustAdd(t, c, genp(AttrService, "dead", AttrTombstone, 1))
	if _, err := c.GenerateKey(Dict{AttrKeyType: KeyTypeECSECPrimeRandom, AttrTokenID: TokenIDSecureEnclave, AttrIsPermanent: true, AttrApplicationTag: "token"}); err != nil {
		t.Fatal(err)
	}
	return db, clock
}

func TestBackupRestore(t *testing.T) {
	src, _ := backupSource(t)
	var buf bytes.Buffer
	calls := 0
	n, err := src.Backup(&buf, []byte("backup password"), func(done, total int) { calls++ })
	wantStatus(t, err, 0)
	if n != 6 || calls == 0 {
		// ak, ck, dk, the internet password, the certificate and the key.
		t.Fatalf("backed up %d items (%d progress calls), want 6", n, calls)
	}
	// Another device: another device secret, another store.
	dst, err := Open(filepath.Join(t.TempDir(), "other.keychain"), &Options{Device: protect.NewStaticDevice(bytes.Repeat([]byte{0x99}, 32))})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	res, err := dst.Restore(bytes.NewReader(buf.Bytes()), []byte("backup password"), nil)
	wantStatus(t, err, 0)
	if res.Restored != 6 || res.Skipped != 0 {
		t.Fatalf("restore: %+v", res)
	}
	all := dst.Client(Entitlements{KeychainAccessGroups: []string{"*"}})
	got, err := all.CopyMatching(genp(AttrService, "s", MatchLimit, MatchLimitAll, ReturnAttributes, true, ReturnData, true))
	wantStatus(t, err, 0)
	var classes []string
	for _, x := range got.([]any) {
		d := x.(Dict)
		classes = append(classes, d[AttrAccessible].(string))
		if d[AttrAccessGroup] != "G2" || string(d[ValueData].([]byte)) != "pw-"+d[AttrAccessible].(string) || !d[AttrCreationDate].(time.Time).Equal(newClock().Now()) {
			t.Errorf("restored item %s", FormatDict(d))
		}
	}
	if strings.Join(classes, ",") != "ak,ck,dk" {
		t.Fatalf("restored protection classes %v: ThisDeviceOnly items must stay behind", classes)
	}
	if n := len(identities(t, all, idnt)); n != 1 {
		t.Fatalf("%d identities restored", n)
	}
	if n := count(t, all, Dict{Class: ClassKey, AttrTokenID: TokenIDSecureEnclave}); n != 0 {
		t.Fatal("a token key left its device")
	}
	notes, _ := all.CopyMatching(dictOf(ClassInternetPassword, ReturnAttributes, true, ReturnData, true))
	if string(notes.(Dict)[DataInetExtraNotes].([]byte)) != "notes" {
		t.Fatal("internet password extras were not restored")
	}
	// Restoring again adds nothing and overwrites nothing.
	res, err = dst.Restore(bytes.NewReader(buf.Bytes()), []byte("backup password"), nil)
	wantStatus(t, err, 0)
	if res.Restored != 0 || res.Skipped != 6 {
		t.Fatalf("second restore: %+v", res)
	}
}

func TestBackupRejectsTamperingAndWrongPasswords(t *testing.T) {
	src := openTest(t, &Options{PasscodeCost: cheapCost})
	mustAdd(t, src, genp(AttrService, "s", ValueData, []byte("pw")))
	var buf bytes.Buffer
	if _, err := src.Backup(&buf, []byte("pw1"), nil); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	restore := func(b []byte, pw string) error {
		dst := openTest(t, nil)
		_, err := dst.Restore(bytes.NewReader(b), []byte(pw), nil)
		if n := count(t, dst, genp()); n != 0 && err != nil {
			t.Fatalf("a failed restore left %d items", n)
		}
		return err
	}
	kdf := protect.KDFRuns()
	wantStatus(t, restore(good, "wrong"), ErrAuthFailed)
	if protect.KDFRuns() != kdf+1 {
		t.Fatal("a password check must cost exactly one derivation")
	}
	wantStatus(t, restore(good, "pw1"), 0)
	for i := 0; i < len(good)*8; i += 5 {
		b := bytes.Clone(good)
		b[i/8] ^= 1 << (i % 8)
		if err := restore(b, "pw1"); err == nil {
			t.Fatalf("bit flip %d accepted", i)
		}
	}
	for n := 0; n < len(good); n += 9 {
		if err := restore(good[:n], "pw1"); err == nil {
			t.Fatalf("truncation to %d accepted", n)
		}
	}
	if err := restore(append(bytes.Clone(good), 0), "pw1"); err == nil {
		t.Fatal("trailing data accepted")
	}
	_, err := src.Backup(&buf, nil, nil)
	wantStatus(t, err, ErrParam)
}

func TestCheckFindsDamage(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "a", ValueData, []byte("1")))
	bad := mustAdd(t, db, genp(AttrService, "b", ValueData, []byte("2"), ReturnPersistentRef, true)).([]byte)
	mustAdd(t, db, genp(AttrService, "c", AttrAccessible, AccessibleAfterFirstUnlock))
	rep, err := db.Check()
	wantStatus(t, err, 0)
	if !rep.OK() || rep.Items[ClassGenericPassword][AccessibleWhenUnlocked] != 2 || rep.Items[ClassGenericPassword][AccessibleAfterFirstUnlock] != 1 {
		t.Fatalf("clean store: %+v", rep)
	}
	raw, _ := db.RawRecordForTest(bad)
	raw[len(raw)-3] ^= 1
	db.PutRawRecordForTest(bad, raw)
	rep, _ = db.Check()
	if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), "genp item "+hexOf(bad)) {
		t.Fatalf("damage not named: %v", rep.Problems)
	}
	st, err := db.Stats()
	wantStatus(t, err, 0)
	if st.Items[ClassGenericPassword][AccessibleWhenUnlocked] != 2 || st.Groups[DefaultAccessGroup] != 3 || st.Unreadable != 0 || st.FileSize == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// A panic in a caller's callback reaches the caller; the store does not
// mistake it for a damaged file.
func TestCallbackPanicsPropagate(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "s"))
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want the callback's panic", r)
		}
	}()
	db.Items(ClassGenericPassword, false, func(Dict, error) bool { panic("boom") })
	t.Fatal("Items swallowed the panic")
}
