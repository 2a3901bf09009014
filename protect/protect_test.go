package protect

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testDevice(b byte) *StaticDevice { return NewStaticDevice(bytes.Repeat([]byte{b}, SecretSize)) }

func TestKeybagRoundTrip(t *testing.T) {
	dev := testDevice(1)
	id := NewStoreID()
	kb, err := NewKeybag(id, dev)
	if err != nil {
		t.Fatal(err)
	}
	if kb.State() != Unlocked {
		t.Fatalf("a new keybag is %v, want Unlocked", kb.State())
	}
	if _, err := kb.KeyID(AKPU); !errors.Is(err, ErrNoPasscode) {
		t.Fatalf("akpu without passcode: %v", err)
	}
	blob, _ := kb.MarshalBinary()
	kb2, err := OpenKeybag(blob, dev)
	if err != nil {
		t.Fatal(err)
	}
	if kb2.State() != Unlocked || kb2.StoreID() != id {
		t.Fatalf("reopened: %v", kb2)
	}
	for _, c := range AllClasses {
		if c == AKPU {
			continue
		}
		id1, _ := kb.KeyID(c)
		id2, err := kb2.KeyID(c)
		if err != nil || id1 != id2 {
			t.Fatalf("%s key id %d vs %d (%v)", c, id1, id2, err)
		}
		key := NewItemKey()
		w, err := kb.WrapItemKey(nil, id1, &key, []byte("aad"))
		if err != nil || len(w) != WrappedItemKeySize {
			t.Fatalf("wrap: %v len %d", err, len(w))
		}
		got, err := kb2.UnwrapItemKey(id2, w, []byte("aad"))
		if err != nil || got != key {
			t.Fatalf("%s: unwrap after reopen: %v", c, err)
		}
		if _, err := kb2.UnwrapItemKey(id2, w, []byte("other")); !errors.Is(err, ErrDecode) {
			t.Fatalf("unwrap with other AAD: %v", err)
		}
	}
	a := kb.Indexer().Tag("genp", "acct", []byte("x"))
	b := kb2.Indexer().Tag("genp", "acct", []byte("x"))
	if a != b {
		t.Fatal("the index key changed on reopen")
	}
}

func TestWrongDevice(t *testing.T) {
	kb, _ := NewKeybag(NewStoreID(), testDevice(1))
	blob, _ := kb.MarshalBinary()
	if _, err := OpenKeybag(blob, testDevice(2)); !errors.Is(err, ErrWrongDevice) {
		t.Fatalf("OpenKeybag with another device secret: %v", err)
	}
	dev := testDevice(3)
	dev.Erase()
	if _, err := OpenKeybag(blob, dev); !errors.Is(err, ErrNoDeviceSecret) {
		t.Fatalf("OpenKeybag with an erased device: %v", err)
	}
}

// Every single-bit flip of a stored keybag is refused (or, for a flip in
// a part nobody authenticates, changes nothing that opens).
func TestKeybagBitFlips(t *testing.T) {
	dev := testDevice(1)
	kb, _ := NewKeybag(NewStoreID(), dev)
	blob, _ := kb.MarshalBinary()
	for i := 0; i < len(blob)*8; i++ {
		b := bytes.Clone(blob)
		b[i/8] ^= 1 << (i % 8)
		kb2, err := OpenKeybag(b, dev)
		if err == nil {
			t.Fatalf("flip of bit %d accepted (%v)", i, kb2)
		}
	}
	for n := 0; n < len(blob); n++ {
		if _, err := OpenKeybag(blob[:n], dev); err == nil {
			t.Fatalf("truncation to %d accepted", n)
		}
	}
}

func TestLockDropsWhenUnlockedKeys(t *testing.T) {
	kb, _ := NewKeybag(NewStoreID(), testDevice(1))
	idAK, _ := kb.KeyID(AK)
	kb.Lock()
	if kb.State() != Locked {
		t.Fatalf("state %v", kb.State())
	}
	for _, c := range []Class{AK, AKU} {
		if _, err := kb.KeyID(c); !errors.Is(err, ErrLocked) {
			t.Errorf("%s after Lock: %v", c, err)
		}
	}
	for _, c := range []Class{CK, CKU, DK, DKU} {
		if _, err := kb.KeyID(c); err != nil {
			t.Errorf("%s after Lock: %v", c, err)
		}
	}
	if kb.Available(idAK) {
		t.Error("ak available after Lock")
	}
	k := NewItemKey()
	if _, err := kb.WrapItemKey(nil, idAK, &k, nil); !errors.Is(err, ErrLocked) {
		t.Errorf("wrap under a locked key: %v", err)
	}
	kb.Close()
	if _, err := kb.KeyID(DK); !errors.Is(err, ErrLocked) {
		t.Errorf("dk after Close: %v", err)
	}
}

func TestSealBlobTamper(t *testing.T) {
	key := NewItemKey()
	aad := []byte("row 7")
	blob := SealBlob(nil, &key, aad, []byte("the secret"))
	if pt, err := OpenBlob(nil, &key, aad, blob); err != nil || string(pt) != "the secret" {
		t.Fatalf("OpenBlob: %q %v", pt, err)
	}
	for i := 0; i < len(blob)*8; i++ {
		b := bytes.Clone(blob)
		b[i/8] ^= 1 << (i % 8)
		if _, err := OpenBlob(nil, &key, aad, b); !errors.Is(err, ErrDecode) {
			t.Fatalf("bit %d: %v", i, err)
		}
	}
	if _, err := OpenBlob(nil, &key, []byte("row 8"), blob); !errors.Is(err, ErrDecode) {
		t.Fatal("other AAD accepted")
	}
	other := NewItemKey()
	if _, err := OpenBlob(nil, &other, aad, blob); !errors.Is(err, ErrDecode) {
		t.Fatal("other key accepted")
	}
	if _, err := OpenBlob(nil, &key, aad, blob[:10]); !errors.Is(err, ErrDecode) {
		t.Fatal("short blob accepted")
	}
	if bytes.Equal(SealBlob(nil, &key, aad, []byte("x")), SealBlob(nil, &key, aad, []byte("x"))) {
		t.Fatal("two seals of one plaintext are equal")
	}
}

func TestIndexer(t *testing.T) {
	ix := newIndexer(bytes.Repeat([]byte{7}, KeySize))
	if ix.Tag("genp", "acct", []byte("a")) != ix.Tag("genp", "acct", []byte("a")) {
		t.Fatal("tags are not deterministic")
	}
	distinct := []Tag{
		ix.Tag("genp", "acct", []byte("a")),
		ix.Tag("genp", "svce", []byte("a")),
		ix.Tag("inet", "acct", []byte("a")),
		ix.Tag("genp", "acct", []byte("b")),
		ix.Tag("genp", "acc", []byte("ta")),
	}
	seen := map[Tag]bool{}
	for _, tg := range distinct {
		if seen[tg] {
			t.Fatal("two different inputs share a tag")
		}
		seen[tg] = true
	}
	for _, row := range []uint64{1, 2, 1 << 40} {
		id1 := ix.RefID(row, [8]byte{1})
		id2 := ix.RefID(row, [8]byte{2})
		if id1 == id2 || ix.RowOf(id1) != row || ix.RowOf(id2) != row {
			t.Fatalf("RefID/RowOf for row %d", row)
		}
	}
}

func TestFileDevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.device")
	d := &FileDevice{Path: path}
	s1, err := d.Secret()
	if err != nil || len(s1) != SecretSize {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	s2, _ := (&FileDevice{Path: path}).Secret()
	if !bytes.Equal(s1, s2) {
		t.Fatal("the secret changed")
	}
	if err := d.Erase(); err != nil {
		t.Fatal(err)
	}
	s3, _ := d.Secret()
	if bytes.Equal(s1, s3) {
		t.Fatal("Erase kept the secret")
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := d.Secret(); err == nil {
		t.Fatal("a short secret file was accepted")
	}
}

func TestDelayTable(t *testing.T) {
	want := map[uint32]time.Duration{0: 0, 1: 0, 4: 0, 5: time.Minute, 6: 5 * time.Minute, 7: 15 * time.Minute, 8: 15 * time.Minute, 9: time.Hour, 10: time.Hour, 200: time.Hour}
	for f, d := range want {
		if got := Delay(f); got != d {
			t.Errorf("Delay(%d) = %v, want %v", f, got, d)
		}
	}
	now := time.Unix(1000, 0)
	a := Attempts{Failures: 6, Last: now}
	if a.Wait(now.Add(time.Minute)) != 4*time.Minute || a.Wait(now.Add(5*time.Minute)) != 0 {
		t.Error("Wait")
	}
}

func TestAttemptRecord(t *testing.T) {
	kb, _ := NewKeybag(NewStoreID(), testDevice(1))
	now := time.Unix(1_700_000_000, 123)
	a := Attempts{Failures: 3, Last: now}
	b := kb.MarshalAttempts(a)
	got, ok := kb.UnmarshalAttempts(b, now)
	if !ok || got.Failures != 3 || !got.Last.Equal(now) {
		t.Fatalf("round trip: %+v %v", got, ok)
	}
	b[3] = 0 // an attacker resets the counter
	got, ok = kb.UnmarshalAttempts(b, now)
	if ok || got.Failures != WipeAfter-1 {
		t.Fatalf("forged record read as %+v", got)
	}
	if got, ok := kb.UnmarshalAttempts(nil, now); !ok || got.Failures != 0 {
		t.Fatal("without a passcode, a missing record is no failures")
	}
	ch, err := kb.PrepareSetPasscode(testDevice(1), nil, []byte("1234"), KDFCost{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	kb.Commit(ch)
	if got, ok := kb.UnmarshalAttempts(nil, now); ok || got.Failures != WipeAfter-1 {
		t.Fatalf("with a passcode set, a deleted record read as %+v", got)
	}
	other, _ := NewKeybag(NewStoreID(), testDevice(1))
	if _, ok := other.UnmarshalAttempts(kb.MarshalAttempts(a), now); ok {
		t.Fatal("a record from another store was accepted")
	}
}

func TestPasscodeChangeRewrapsOnly(t *testing.T) {
	dev := testDevice(1)
	kb, _ := NewKeybag(NewStoreID(), dev)
	cheap := KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}
	idAK, _ := kb.KeyID(AK)
	ch, err := kb.PrepareSetPasscode(dev, nil, []byte("1234"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	kb.Commit(ch)
	if id, _ := kb.KeyID(AK); id != idAK {
		t.Fatal("setting a passcode replaced the ak key")
	}
	idAKPU, err := kb.KeyID(AKPU)
	if err != nil {
		t.Fatalf("akpu after setting a passcode: %v", err)
	}
	kb2, err := OpenKeybag(ch.Blob, dev)
	if err != nil || kb2.State() != BeforeFirstUnlock {
		t.Fatalf("reopen: %v %v", err, kb2)
	}
	before := KDFRuns()
	if err := kb2.Unlock(dev, []byte("0000")); !errors.Is(err, ErrWrongPasscode) {
		t.Fatalf("wrong passcode: %v", err)
	}
	if KDFRuns() != before+1 {
		t.Fatal("a passcode check must run the derivation once")
	}
	if err := kb2.Unlock(dev, []byte("1234")); err != nil {
		t.Fatal(err)
	}
	if id, _ := kb2.KeyID(AKPU); id != idAKPU {
		t.Fatal("akpu key changed")
	}
	rm, err := kb2.PrepareSetPasscode(dev, []byte("1234"), nil, cheap)
	if err != nil || len(rm.Dropped) != 1 || rm.Dropped[0] != idAKPU {
		t.Fatalf("removing: %v %v", err, rm)
	}
	kb2.Commit(rm)
	if _, err := kb2.KeyID(AKPU); !errors.Is(err, ErrNoPasscode) {
		t.Fatalf("akpu after removal: %v", err)
	}
	if _, err := kb2.PrepareSetPasscode(dev, nil, []byte("x"), KDFCost{Time: 100, MemoryKiB: 64, Threads: 1}); err == nil {
		t.Fatal("a cost above the caps was accepted")
	}
}

// A prepared passcode change that is not committed can be discarded: the
// class keys it opened are wiped.
func TestPasscodeChangeDiscardWipes(t *testing.T) {
	kb, _ := NewKeybag(NewStoreID(), testDevice(1))
	ch, err := kb.PrepareSetPasscode(testDevice(1), nil, []byte("1234"), KDFCost{Time: 1, MemoryKiB: 64, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	var held []*classKey
	for _, k := range ch.keys {
		held = append(held, k)
	}
	if len(held) == 0 {
		t.Fatal("the change holds no keys")
	}
	ch.Discard()
	for _, k := range held {
		if k.key != [KeySize]byte{} || k.aead != nil {
			t.Error("a class key survived Discard")
		}
	}
}

// The pass count solves fixed + passes × perPass ≈ target, within 1..8.
func TestPassesFor(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		t1, t3 time.Duration
		want   uint32
	}{
		{25 * ms, 65 * ms, 8},  // 20 ms a pass, 5 ms fixed: 180 ms is about 9 passes, capped at 8
		{60 * ms, 160 * ms, 3}, // 50 ms a pass, 10 ms fixed: 3 passes take 160 ms, 4 would take 210
		{200 * ms, 600 * ms, 1},
		{30 * ms, 30 * ms, 8}, // no measurable per-pass cost: the most passes
	} {
		if got := passesFor(180*ms, tc.t1, tc.t3); got != tc.want {
			t.Errorf("passesFor(180ms, %v, %v) = %d, want %d", tc.t1, tc.t3, got, tc.want)
		}
	}
}

// The pooled tag state keeps no attribute value after use: its scratch
// buffer is wiped before it goes back to the pool, for a short value and
// for one long enough to fill the buffer several times.
func TestTagStateIsWiped(t *testing.T) {
	ix := newIndexer(bytes.Repeat([]byte{1}, KeySize))
	for _, n := range []int{20, 3000} {
		canary := bytes.Repeat([]byte("canary!"), n/7+1)
		want := ix.Tag("genp", "acct", canary)
		m := ix.tags.Get().(*macState)
		if bytes.Contains(m.buf[:], []byte("canary!")) {
			t.Fatalf("a %d-byte value is still in the pooled buffer", len(canary))
		}
		ix.tags.Put(m)
		if ix.Tag("genp", "acct", canary) != want {
			t.Fatal("the tag changed after wiping")
		}
	}
}

// A cost above the caps is refused when it is set and when it is read:
// a backup from elsewhere claiming one is corrupt at once, before any
// derivation, so a crafted header cannot buy minutes of work or gigabytes
// of memory (a fuzz finding: 48 passes over 900 MiB took 39 s).
func TestKDFCaps(t *testing.T) {
	for _, c := range []KDFCost{
		{Time: 48, MemoryKiB: 900 << 10, Threads: 14},
		{Time: 1, MemoryKiB: 2 << 20, Threads: 2},
		{Time: MaxKDFTime + 1, MemoryKiB: 64, Threads: 1},
		{Time: 33, MemoryKiB: 64 << 10, Threads: 2}, // over the work cap
	} {
		if _, err := NewBackupWriter(io.Discard, []byte("pw"), c); err == nil {
			t.Errorf("a backup was written with cost %+v", c)
		}
		var buf bytes.Buffer
		w, err := NewBackupWriter(&buf, []byte("pw"), KDFCost{Time: 1, MemoryKiB: 64, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte("payload"))
		w.Close()
		b := buf.Bytes()
		p := KDFParams{KDFCost: c}
		copy(b[len(backupMagic):], p.marshal(nil)[:9]) // the cost fields only
		runs := KDFRuns()
		if _, err := NewBackupReader(bytes.NewReader(b), []byte("pw")); !errors.Is(err, ErrBackupCorrupt) || KDFRuns() != runs {
			t.Errorf("a backup claiming cost %+v: %v (%d derivations)", c, err, KDFRuns()-runs)
		}
	}
	// The largest default cost is well inside.
	if err := (KDFCost{Time: 8, MemoryKiB: 64 << 10, Threads: 2}).check(); err != nil {
		t.Fatalf("the default cost is refused: %v", err)
	}
}
