package robustness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/secitemdb/secitemdb/secitem"
)

// memAnchor is a monotonic counter standing in for a TPM counter or a
// remote record.
type memAnchor struct {
	mu   sync.Mutex
	g    uint64
	fail bool
}

func (a *memAnchor) Load() (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.g, nil
}

func (a *memAnchor) Advance(g uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("anchor unreachable")
	}
	a.g = max(a.g, g)
	return nil
}

// BI-7: copying an old file back over the store is detected at Open when
// the embedder supplies a rollback anchor; without one it is not (and
// docs/reliability.md says so). A crash between a commit and the anchor's
// advance leaves the file ahead of the anchor, which is fine.
func TestRollbackDetected(t *testing.T) {
	n := runs(50, 1_000)
	undetected := 0
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		path := filepath.Join(dir, "rb.keychain")
		anchor := &memAnchor{}
		opts := options()
		opts.RollbackAnchor = anchor
		db, err := secitem.Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		add := func(key string) {
			d := genp(key)
			d[secitem.ValueData] = []byte("v-" + key)
			if _, err := db.Add(d); err != nil {
				t.Fatal(err)
			}
		}
		for j := 0; j <= i%5; j++ {
			add(fmt.Sprintf("old-%d", j))
		}
		db.Close()
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if db, err = secitem.Open(path, opts); err != nil {
			t.Fatal(err)
		}
		// The change an attacker wants undone: here a deleted item and a
		// new one (a revoked credential, a passcode attempt record, ...).
		if err := db.Delete(genp("old-0")); err != nil {
			t.Fatal(err)
		}
		add("new")
		db.Close()
		if err := os.WriteFile(path, old, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = secitem.Open(path, opts)
		if statusOf(err) != secitem.ErrDecode {
			t.Fatalf("opening a rolled-back file with an anchor: %v, want ErrDecode", err)
		}
		// Without an anchor the old file opens: nothing inside one file
		// can tell it from the current one.
		db, err = secitem.Open(path, options())
		if err != nil {
			t.Fatal(err)
		}
		if countOf(t, db, genp("old-0")) == 1 {
			undetected++
		}
		db.Close()
	}
	t.Logf("BI-7: %d whole-file rollbacks: %d detected with an anchor; without one, %d opened with the old contents (out of scope, documented)", n, n, undetected)

	// An anchor that cannot be advanced: the change is committed, the call
	// says so (ErrIO), and the next commit catches the anchor up.
	path := filepath.Join(t.TempDir(), "lag.keychain")
	anchor := &memAnchor{}
	opts := options()
	opts.RollbackAnchor = anchor
	db, err := secitem.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	anchor.fail = true
	d := genp("while-unreachable")
	d[secitem.ValueData] = []byte("v")
	_, err = db.Add(d)
	if statusOf(err) != secitem.ErrIO {
		t.Fatalf("Add with an unreachable anchor: %v, want ErrIO", err)
	}
	if countOf(t, db, genp("while-unreachable")) != 1 {
		t.Fatal("the change was not committed")
	}
	behind, _ := anchor.Load()
	anchor.fail = false
	if _, err := db.Add(genp("next")); err != nil {
		t.Fatal(err)
	}
	if now, _ := anchor.Load(); now <= behind+1 {
		t.Fatalf("the anchor did not catch up: %d after %d", now, behind)
	}
}

// A damaged newest meta page: bbolt opens the store one commit back, as
// after a crash that tore the meta page. Without an anchor the store opens
// without the last commit (and Check has nothing to report); with one,
// Open refuses the store as rolled back (docs/reliability.md).
func TestDamagedNewestMeta(t *testing.T) {
	for _, withAnchor := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "meta.keychain")
		anchor := &memAnchor{}
		opts := options()
		if withAnchor {
			opts.RollbackAnchor = anchor
		}
		db, err := secitem.Open(path, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"first", "last"} {
			d := genp(key)
			d[secitem.ValueData] = []byte("v-" + key)
			if _, err := db.Add(d); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		img, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The newest meta page: the one with the larger txid.
		m := newestMeta(img)
		clear(img[m : m+64])
		if err := os.WriteFile(path, img, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err = secitem.Open(path, opts)
		if withAnchor {
			if statusOf(err) != secitem.ErrDecode || !strings.Contains(err.Error(), "rolled back") {
				t.Fatalf("with an anchor: Open = %v, want errSecDecode saying the store was rolled back", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("without an anchor: Open = %v, want the older commit", err)
		}
		for key, present := range map[string]bool{"first": true, "last": false} {
			q := genp(key)
			q[secitem.ReturnData] = true
			_, err := db.CopyMatching(q)
			if (err == nil) != present {
				t.Fatalf("without an anchor: reading %q: %v, want present=%v", key, err, present)
			}
		}
		if rep, err := db.Check(); err != nil || !rep.OK() {
			t.Fatalf("without an anchor: Check = %+v, %v; want clean (the older commit is sound)", rep, err)
		}
		db.Close()
	}
}
