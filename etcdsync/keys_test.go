package etcdsync

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/secitemdb/secitemdb/secitem"
)

// syncItemForTest returns the replication form of one synchronizable item.
func syncItemForTest(t *testing.T) *secitem.SyncItem {
	t.Helper()
	db := openStore(t, filepath.Join(t.TempDir(), "k.keychain"))
	t.Cleanup(func() { db.Close() })
	_, err := db.Add(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "s",
		secitem.AttrSynchronizable: true, secitem.ValueData: []byte("canary-secret")})
	if err != nil {
		t.Fatal(err)
	}
	var it *secitem.SyncItem
	db.SyncChanges(func(c secitem.SyncChange) bool { it = c.Item; return false })
	if it == nil {
		t.Fatal("no journaled item")
	}
	return it
}

// A sealed item opens only under the etcd key it was sealed for, in the
// group it was sealed for, and not at all once a byte changes; the value
// in etcd never shows the secret.
func TestSealedItemsAreBoundToNameAndGroup(t *testing.T) {
	it := syncItemForTest(t)
	key := bytes.Repeat([]byte{9}, 32)
	g, err := deriveKeys("team", key)
	if err != nil {
		t.Fatal(err)
	}
	name := g.name([]byte("item-1"))
	v, err := g.sealItem(name, it)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(v, []byte("canary-secret")) {
		t.Fatal("the sealed value holds the secret in clear")
	}
	back, err := g.openItem(name, v)
	if err != nil {
		t.Fatalf("open under its own name: %v", err)
	}
	a, _ := it.MarshalBinary()
	b, _ := back.MarshalBinary()
	if !bytes.Equal(a, b) {
		t.Fatal("the item changed on the way through etcd")
	}
	if _, err := g.openItem(g.name([]byte("item-2")), v); err == nil {
		t.Error("a value moved to another etcd key opened")
	}
	other, _ := deriveKeys("other-team", key)
	if _, err := other.openItem(name, v); err == nil {
		t.Error("a value opened in another group with the same group key")
	}
	if other.name([]byte("item-1")) == name {
		t.Error("two groups give the same item the same etcd key")
	}
	for i := range v {
		bad := bytes.Clone(v)
		bad[i] ^= 0x01
		if _, err := g.openItem(name, bad); err == nil {
			t.Fatalf("a value with byte %d flipped opened", i)
		}
	}
	if _, err := g.openItem(name, v[:10]); err == nil {
		t.Error("a truncated value opened")
	}
}

// The group key stored in etcd opens only with the group's secret and
// only for its own group; a damaged record is an error, not a key.
func TestWrappedGroupKey(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	w, err := wrapGroupKey("team", key, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, key) {
		t.Fatal("the wrapped group key holds the key in clear")
	}
	got, err := unwrapGroupKey("team", w, []byte("correct horse"))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("unwrap: %v", err)
	}
	if _, err := unwrapGroupKey("team", w, []byte("wrong horse")); !errors.Is(err, ErrWrongSecret) {
		t.Errorf("wrong secret: %v, want ErrWrongSecret", err)
	}
	if _, err := unwrapGroupKey("other-team", w, []byte("correct horse")); !errors.Is(err, ErrWrongSecret) {
		t.Errorf("another group's name: %v, want ErrWrongSecret", err)
	}
	if _, err := unwrapGroupKey("team", w[:20], []byte("correct horse")); err == nil || errors.Is(err, ErrWrongSecret) {
		t.Errorf("a truncated record: %v, want a damage error", err)
	}
	costly := bytes.Clone(w)
	costly[1] = 0xff // the time cost, far above the cap
	if _, err := unwrapGroupKey("team", costly, []byte("correct horse")); err == nil || errors.Is(err, ErrWrongSecret) {
		t.Errorf("an unacceptable cost: %v, want it refused before deriving", err)
	}
}
