package robustness

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secitemdb/secitemdb/secitem"
)

// FI-2: the child kills itself at an exact step of a write, chosen by a
// failpoint; after reopening, the call it was in is exactly not applied
// (before the commit) or exactly applied (after it), and nothing else
// changed.
func TestCrashAtCommitPoints(t *testing.T) {
	for _, tc := range []struct {
		step    string
		applied bool
		anchor  bool
	}{
		{"store:before-commit", false, false},
		{"store:after-commit", true, false},
		{"store:before-anchor", true, true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "fp.keychain")
			anchor := filepath.Join(dir, "anchor")
			m := newModel()
			rng := mrand.New(mrand.NewPCG(3, 4))
			n := runs(20, 500)
			for i := 0; i < n; i++ {
				env := []string{"SECITEM_PATH=" + path, fmt.Sprintf("SECITEM_SEED=%d", rng.Uint64()),
					fmt.Sprintf("SECITEM_CRASH_AT=%s#%d", tc.step, 1+rng.IntN(30))}
				if tc.anchor {
					env = append(env, "SECITEM_ANCHOR="+anchor)
				}
				c := startChild(t, "workload", env...)
				lines := c.wait()
				if !c.killed() || len(lines) < 2 || lines[len(lines)-1] != "X "+tc.step {
					t.Fatalf("run %d: the child did not stop at %s (%v): %s", i, tc.step, c.err, c.stderrText())
				}
				m.apply(t, lines[:len(lines)-1])
				if m.pending == "" {
					t.Fatalf("run %d: no call in flight at %s", i, tc.step)
				}
				before := m.snapshot()
				opts := options()
				if tc.anchor {
					opts.RollbackAnchor = &fileAnchor{path: anchor}
				}
				db, err := secitem.Open(path, opts)
				if err != nil {
					t.Fatalf("run %d: reopen: %v", i, err)
				}
				m.verify(t, db)
				if applied := m.snapshot() != before; applied != tc.applied {
					t.Fatalf("run %d: crash at %s: call %q applied = %v, want %v", i, tc.step, m.pending, applied, tc.applied)
				}
				checkClean(t, db)
				db.Close()
			}
			t.Logf("FI-2 %s: %d crashes, state exactly %s the call each time", tc.step, n, map[bool]string{false: "before", true: "after"}[tc.applied])
		})
	}
}

// snapshot is a comparable summary of the model.
func (m *model) snapshot() string {
	var b strings.Builder
	for i := 0; i < workloadKeys; i++ {
		k := fmt.Sprintf("k%d", i)
		fmt.Fprintf(&b, "%s=%s;", k, m.values[k])
	}
	for _, n := range identityNames {
		fmt.Fprintf(&b, "%s=%v;", n, m.ids[n])
	}
	return b.String()
}

var (
	passA = []byte("passcode-A")
	passB = []byte("passcode-B")
)

// seedStore makes a store with a passcode and one item of each
// protection class a backup carries.
func seedStore(t testing.TB, path string, passcode []byte) int {
	t.Helper()
	db := openStore(t, path)
	defer db.Close()
	if passcode != nil {
		if err := db.SetPasscode(nil, passcode); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, p := range []string{secitem.AccessibleWhenUnlocked, secitem.AccessibleAfterFirstUnlock, secitem.AccessibleAlways} {
		for i := 0; i < 10; i++ {
			d := genp(fmt.Sprintf("%s-%d", p, i))
			d[secitem.AttrAccessible] = p
			d[secitem.ValueData] = []byte("secret-" + p)
			if _, err := db.Add(d); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	return n
}

// verifySeeded checks every item seedStore added, by content: each reads
// back its own secret.
func verifySeeded(t testing.TB, db *secitem.DB) {
	t.Helper()
	for _, p := range []string{secitem.AccessibleWhenUnlocked, secitem.AccessibleAfterFirstUnlock, secitem.AccessibleAlways} {
		for i := 0; i < 10; i++ {
			q := genp(fmt.Sprintf("%s-%d", p, i))
			q[secitem.ReturnData] = true
			v, err := db.CopyMatching(q)
			if err != nil {
				t.Fatalf("seeded item %s-%d: %v", p, i, err)
			}
			if b, _ := v.([]byte); string(b) != "secret-"+p {
				t.Fatalf("seeded item %s-%d reads back other data", p, i)
			}
		}
	}
}

func childPasscode(fail func(error) int) int {
	db, err := secitem.Open(os.Getenv("SECITEM_PATH"), options())
	if err != nil {
		return fail(err)
	}
	report("R")
	if os.Getenv("SECITEM_WRONG") != "" {
		err = db.Unlock([]byte("wrong passcode"))
	} else {
		err = db.SetPasscode(passA, passB)
	}
	report("done %d", statusOf(err))
	return 0
}

// FI-8 and FI-9: a passcode change killed at each of its steps leaves
// exactly one passcode working and every item readable; a wrong-passcode
// attempt killed after its record is written is still counted.
func TestCrashDuringPasscodeChange(t *testing.T) {
	// The store's commit points are met twice: first when the attempt is
	// recorded, then when the new keybag is committed (#2).
	for _, tc := range []struct {
		step    string
		newWins bool
	}{
		{"setpasscode:prepared#1", false},
		{"setpasscode:in-transaction#1", false},
		{"store:before-commit#1", false},
		{"store:before-commit#2", false},
		{"store:after-commit#2", true},
		{"setpasscode:stored#1", true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			n := runs(20, 500)
			for i := 0; i < n; i++ {
				path := filepath.Join(t.TempDir(), "pc.keychain")
				items := seedStore(t, path, passA)
				c := startChild(t, "passcode", "SECITEM_PATH="+path, "SECITEM_CRASH_AT="+tc.step)
				lines := c.wait()
				step, _, _ := strings.Cut(tc.step, "#")
				if !c.killed() || lines[len(lines)-1] != "X "+step {
					t.Fatalf("the child did not stop at %s: %v %s", tc.step, lines, c.stderrText())
				}
				db := openStore(t, path)
				errA, errB := db.Unlock(passA), db.Unlock(passB)
				if (errA == nil) == (errB == nil) {
					t.Fatalf("after a crash at %s: old passcode %v, new passcode %v; exactly one must work", tc.step, errA, errB)
				}
				if (errB == nil) != tc.newWins {
					t.Fatalf("after a crash at %s the new passcode works = %v, want %v", tc.step, errB == nil, tc.newWins)
				}
				if err := db.Unlock(map[bool][]byte{false: passA, true: passB}[tc.newWins]); err != nil {
					t.Fatal(err)
				}
				if got := countOf(t, db, secitem.Dict{secitem.Class: secitem.ClassGenericPassword}); got != items {
					t.Fatalf("%d items readable after the crash, want %d", got, items)
				}
				checkClean(t, db)
				db.Close()
			}
			t.Logf("FI-8 %s: %d crashes, exactly one passcode worked each time, every item readable", tc.step, n)
		})
	}
	t.Run("attempt-recorded", func(t *testing.T) {
		// Four attempts per store: the fifth failure would start a delay,
		// during which attempts are refused before they are recorded.
		var path string
		n := runs(20, 500)
		for i := 0; i < n; i++ {
			if i%4 == 0 {
				path = filepath.Join(t.TempDir(), "att.keychain")
				seedStore(t, path, passA)
			}
			c := startChild(t, "passcode", "SECITEM_PATH="+path, "SECITEM_WRONG=1", "SECITEM_CRASH_AT=passcode:attempt-recorded#1")
			c.wait()
			if !c.killed() {
				t.Fatalf("the child was not killed: %s", c.stderrText())
			}
			db := openStore(t, path)
			failures, _, err := db.UnlockDelay()
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			if failures != i%4+1 {
				t.Fatalf("after %d attempts killed before their check, the counter is %d", i%4+1, failures)
			}
		}
		t.Logf("FI-9: %d attempts killed between their record and their check, %d counted", n, n)
	})
}

func childBackup(fail func(error) int) int {
	db, err := secitem.Open(os.Getenv("SECITEM_PATH"), options())
	if err != nil {
		return fail(err)
	}
	if err := db.Unlock(passA); err != nil {
		return fail(err)
	}
	f, err := os.Create(os.Getenv("SECITEM_OUT"))
	if err != nil {
		return fail(err)
	}
	report("R")
	_, err = db.Backup(f, []byte("backup password"), nil)
	f.Close()
	report("done %d", statusOf(err))
	return 0
}

func childRestore(fail func(error) int) int {
	db, err := secitem.Open(os.Getenv("SECITEM_PATH"), options())
	if err != nil {
		return fail(err)
	}
	b, err := os.ReadFile(os.Getenv("SECITEM_IN"))
	if err != nil {
		return fail(err)
	}
	report("R")
	_, err = db.Restore(bytes.NewReader(b), []byte("backup password"), nil)
	report("done %d", statusOf(err))
	return 0
}

// FI-8 for backups: a backup killed half-written is refused whole by
// Restore; a restore killed anywhere before its commit restores nothing,
// after it everything.
func TestCrashDuringBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.keychain")
	items := seedStore(t, src, passA)
	rng := mrand.New(mrand.NewPCG(5, 6))
	n := runs(20, 500)
	for i := 0; i < n; i++ {
		out := filepath.Join(dir, fmt.Sprintf("partial-%d.backup", i))
		c := startChild(t, "backup", "SECITEM_PATH="+src, "SECITEM_OUT="+out, fmt.Sprintf("SECITEM_CRASH_AT=backup:item-written#%d", 1+rng.IntN(items)))
		c.wait()
		if !c.killed() {
			t.Fatalf("the backup child was not killed: %s", c.stderrText())
		}
		dst := openStore(t, filepath.Join(dir, fmt.Sprintf("dst-%d.keychain", i)))
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		_, err = dst.Restore(bytes.NewReader(b), []byte("backup password"), nil)
		if statusOf(err) != secitem.ErrDecode {
			t.Fatalf("restoring a backup killed half-written: %v, want ErrDecode", err)
		}
		if got := countOf(t, dst, secitem.Dict{secitem.Class: secitem.ClassGenericPassword}); got != 0 {
			t.Fatalf("a refused restore left %d items", got)
		}
		dst.Close()
	}
	t.Logf("FI-8 backup: %d backups killed half-written, each refused whole", n)

	var full bytes.Buffer
	db := openStore(t, src)
	if err := db.Unlock(passA); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Backup(&full, []byte("backup password"), nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	backup := filepath.Join(dir, "full.backup")
	if err := os.WriteFile(backup, full.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := countOf(t, mustRestoreCount(t, dir, backup), secitem.Dict{secitem.Class: secitem.ClassGenericPassword})
	for _, tc := range []struct {
		step string
		all  bool
	}{{"restore:item-added", false}, {"store:before-commit", false}, {"store:after-commit", true}} {
		for i := 0; i < n; i++ {
			path := filepath.Join(dir, fmt.Sprintf("r-%s-%d.keychain", strings.ReplaceAll(tc.step, ":", "_"), i))
			openStore(t, path).Close()
			k := 1
			if tc.step == "restore:item-added" {
				k = 1 + rng.IntN(restored)
			}
			c := startChild(t, "restore", "SECITEM_PATH="+path, "SECITEM_IN="+backup, fmt.Sprintf("SECITEM_CRASH_AT=%s#%d", tc.step, k))
			c.wait()
			if !c.killed() {
				t.Fatalf("the restore child was not killed at %s: %s", tc.step, c.stderrText())
			}
			dst := openStore(t, path)
			got := countOf(t, dst, secitem.Dict{secitem.Class: secitem.ClassGenericPassword})
			want := 0
			if tc.all {
				want = restored
			}
			if got != want {
				t.Fatalf("restore killed at %s: %d items, want %d", tc.step, got, want)
			}
			checkClean(t, dst)
			dst.Close()
		}
		t.Logf("FI-8 restore %s: %d crashes, all-or-nothing each time", tc.step, n)
	}
}

func mustRestoreCount(t *testing.T, dir, backup string) *secitem.DB {
	t.Helper()
	db := openStore(t, filepath.Join(dir, "reference.keychain"))
	t.Cleanup(func() { db.Close() })
	b, _ := os.ReadFile(backup)
	if _, err := db.Restore(bytes.NewReader(b), []byte("backup password"), nil); err != nil {
		t.Fatal(err)
	}
	return db
}
