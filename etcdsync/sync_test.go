package etcdsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/secitemdb/secitemdb/secitem"
)

func init() {
	// A cheap group-secret derivation: tests join hundreds of times.
	kdfTime, kdfMemory, kdfThreads = 1, 64, 1
}

func genp(kv ...any) secitem.Dict {
	d := secitem.Dict{secitem.Class: secitem.ClassGenericPassword}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

func syncItem(acct string, kv ...any) secitem.Dict {
	return genp(append([]any{secitem.AttrService, "shared", secitem.AttrAccount, acct, secitem.AttrSynchronizable, true}, kv...)...)
}

// member is one store of a test group, with its engine.
type member struct {
	name string
	db   *secitem.DB
	e    *Engine
}

func newMember(t testing.TB, et *testEtcd, dir, name, group string) *member {
	t.Helper()
	db := openStore(t, filepath.Join(dir, name+".keychain"))
	cli := et.client(t)
	if err := Join(t.Context(), db, cli, group, []byte("group secret")); err != nil {
		t.Fatal(err)
	}
	e, err := Start(db, cli, group, Options{Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m := &member{name: name, db: db, e: e}
	t.Cleanup(func() { e.Close(); db.Close() })
	return m
}

// snapshot describes a store's synchronizable items and tombstones:
// account, tombstone flag, mdat and a hash of the secret.
func snapshot(t testing.TB, db *secitem.DB) string {
	t.Helper()
	var lines []string
	err := db.Items(secitem.ClassGenericPassword, true, func(d secitem.Dict, err error) bool {
		if err != nil {
			t.Fatalf("an item does not open: %v", err)
		}
		if fmt.Sprint(d[secitem.AttrSynchronizable]) != "1" {
			return true
		}
		data, _ := d[secitem.ValueData].([]byte)
		h := sha256.Sum256(data)
		lines = append(lines, fmt.Sprintf("%v tomb=%v mdat=%v data=%s", d[secitem.AttrAccount], d[secitem.AttrTombstone],
			d[secitem.AttrModificationDate].(time.Time).UnixNano(), hex.EncodeToString(h[:6])))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// converge resumes every engine and runs rounds until all stores hold the
// same synchronizable items and nothing is pending; it fails after a
// minute.
func converge(t testing.TB, ms []*member) {
	t.Helper()
	for _, m := range ms {
		m.e.Resume()
	}
	deadline := time.Now().Add(time.Minute)
	for {
		for _, m := range ms {
			m.e.Sync(t.Context())
		}
		pending := 0
		for _, m := range ms {
			pending += m.e.Status().Pending
		}
		first := snapshot(t, ms[0].db)
		same := pending == 0
		for _, m := range ms[1:] {
			same = same && snapshot(t, m.db) == first
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			for _, m := range ms {
				t.Logf("%s (status %+v):\n%s", m.name, m.e.Status(), snapshot(t, m.db))
			}
			t.Fatal("the stores did not converge within a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestJoin(t *testing.T) {
	et := startEtcd(t)
	cli := et.client(t)
	dir := t.TempDir()
	a := openStore(t, filepath.Join(dir, "a.keychain"))
	b := openStore(t, filepath.Join(dir, "b.keychain"))
	defer a.Close()
	defer b.Close()
	if _, err := Start(a, cli, "g", Options{}); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("Start before Join: %v", err)
	}
	if err := Join(t.Context(), a, cli, "g", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := Join(t.Context(), b, cli, "g", []byte("wrong")); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("Join with a wrong secret: %v", err)
	}
	if err := Join(t.Context(), b, cli, "g", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	ka, _ := loadGroupKey(a, "g")
	kb, _ := loadGroupKey(b, "g")
	if !bytes.Equal(ka.names, kb.names) {
		t.Fatal("two members derived different keys")
	}
	// The group key is a ThisDeviceOnly item: it never syncs itself.
	if st, _ := a.SyncStatus(); st.Pending != 0 {
		t.Fatalf("joining journaled %d changes", st.Pending)
	}
	if err := Leave(a, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(a, cli, "g", Options{}); !errors.Is(err, ErrNotJoined) {
		t.Fatalf("Start after Leave: %v", err)
	}
}

// Three stores, one etcd: random adds, updates and deletes on random
// stores, with syncing paused and resumed at random; afterwards every store
// holds the same synchronizable items and tombstones, and nothing of a
// local item (nor any plaintext of a synchronizable one) is in etcd.
func TestThreeStoresConverge(t *testing.T) {
	et := startEtcd(t)
	check := 0
	rapid.Check(t, func(rt *rapid.T) {
		check++
		group := fmt.Sprintf("g%d", check)
		dir := t.TempDir()
		ms := []*member{newMember(t, et, dir, "a", group), newMember(t, et, dir, "b", group), newMember(t, et, dir, "c", group)}
		var canaries [][]byte
		steps := rapid.IntRange(5, 40).Draw(rt, "steps")
		for i := 0; i < steps; i++ {
			m := ms[rapid.IntRange(0, 2).Draw(rt, "store")]
			acct := fmt.Sprintf("k%d", rapid.IntRange(0, 5).Draw(rt, "key"))
			secret := []byte(fmt.Sprintf("sync-secret-%d-%d", check, i))
			switch rapid.IntRange(0, 6).Draw(rt, "action") {
			case 0, 1:
				_, err := m.db.Add(syncItem(acct, secitem.ValueData, secret, secitem.AttrAccessible, secitem.AccessibleAfterFirstUnlock))
				if err != nil && secitem.StatusOf(err) != secitem.ErrDuplicateItem {
					rt.Fatal(err)
				}
			case 2:
				err := m.db.Update(syncItem(acct), secitem.Dict{secitem.ValueData: secret})
				if err != nil && secitem.StatusOf(err) != secitem.ErrItemNotFound {
					rt.Fatal(err)
				}
			case 3:
				err := m.db.Delete(syncItem(acct))
				if err != nil && secitem.StatusOf(err) != secitem.ErrItemNotFound {
					rt.Fatal(err)
				}
			case 4:
				canary := []byte(fmt.Sprintf("local-canary-%d-%d", check, i))
				canaries = append(canaries, canary)
				if _, err := m.db.Add(genp(secitem.AttrService, "local", secitem.AttrAccount, string(canary), secitem.ValueData, canary)); err != nil {
					rt.Fatal(err)
				}
			case 5:
				m.e.Pause()
			case 6:
				m.e.Resume()
			}
			canaries = append(canaries, secret)
		}
		converge(t, ms)
		dump := dumpEtcd(t, ms[0].e.cli)
		for _, c := range canaries {
			if bytes.Contains(dump, c) {
				rt.Fatalf("etcd holds %q in clear", c)
			}
		}
		if len(canaries) > 0 && !bytes.Contains(dump, []byte("/items/")) && strings.Contains(snapshot(t, ms[0].db), "k") {
			rt.Fatal("the stores hold synchronizable items that etcd does not")
		}
		for _, m := range ms {
			m.e.Close()
		}
	})
}

// StoredStatus needs no key: on a store with a passcode, reopened and not
// yet unlocked, it still reports the group's revision and pending changes;
// a group the store never joined is still ErrNotJoined.
func TestStoredStatusWhileLocked(t *testing.T) {
	et := startEtcd(t)
	for _, flavor := range []secitem.Flavor{secitem.DataProtection, secitem.FileBased} {
		t.Run(flavor.String(), func(t *testing.T) {
			dir := t.TempDir()
			m := newMember(t, et, dir, "locked", "g-"+flavor.String())
			m.e.Close() // nothing pushes the change below
			if err := m.db.SetPasscode(nil, []byte("1234")); err != nil {
				t.Fatal(err)
			}
			if _, err := m.db.Add(syncItem("x", secitem.ValueData, []byte("v"))); err != nil {
				t.Fatal(err)
			}
			m.db.Close()
			db, err := secitem.Open(filepath.Join(dir, "locked.keychain"), &secitem.Options{Device: deviceForTests(), PasscodeCost: cheap, Flavor: flavor})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.State() == secitem.Unlocked {
				t.Fatal("the store is not locked")
			}
			st, err := StoredStatus(db, "g-"+flavor.String())
			if err != nil || st.Pending == 0 {
				t.Fatalf("status of a locked store: %+v, %v", st, err)
			}
			if _, err := StoredStatus(db, "other"); !errors.Is(err, ErrNotJoined) {
				t.Fatalf("a group never joined: %v", err)
			}
		})
	}
}

// quiesce pauses e and waits for a round in flight to end, so a test can
// call push itself with no round running beside it.
func quiesce(e *Engine) {
	e.Pause()
	e.round.Lock() // empty on purpose: a barrier behind a round in flight
	e.round.Unlock()
}

// TestPushBatches pushes 150 new items in one round: etcd's revision
// (one per write transaction) advances by three batches, not 150 puts,
// and a second store pulls every item.
func TestPushBatches(t *testing.T) {
	et := startEtcd(t)
	dir := t.TempDir()
	a := newMember(t, et, dir, "a", "batch")
	quiesce(a.e)
	for i := 0; i < 150; i++ {
		if _, err := a.db.Add(syncItem(fmt.Sprintf("k%03d", i), secitem.ValueData, []byte(fmt.Sprintf("secret-%d", i)))); err != nil {
			t.Fatal(err)
		}
	}
	rev := func() int64 {
		r, err := a.e.cli.Get(t.Context(), "any")
		if err != nil {
			t.Fatal(err)
		}
		return r.Header.Revision
	}
	before := rev()
	pushed, err := a.e.push(t.Context())
	if err != nil || pushed != 150 {
		t.Fatalf("push: %d items, %v; want 150", pushed, err)
	}
	if d := rev() - before; d != 3 {
		t.Fatalf("150 items took %d etcd write transactions, want 3 (batches of %d)", d, pushBatch)
	}
	if p := a.e.Status().Pending; p != 0 {
		t.Fatalf("%d changes still pending after the push", p)
	}
	b := newMember(t, et, dir, "b", "batch")
	converge(t, []*member{a, b})
}

// TestPushBatchConflict lets another writer change one of a batch's keys
// between the batch's read and its write: the batch's condition fails and
// its items are pushed one by one, the newest version of each winning.
func TestPushBatchConflict(t *testing.T) {
	et := startEtcd(t)
	dir := t.TempDir()
	// Registered first, so it runs after the engines are closed.
	t.Cleanup(func() { beforeBatchPut = nil })
	a := newMember(t, et, dir, "a", "conflict")
	b := newMember(t, et, dir, "b", "conflict")
	quiesce(a.e)
	quiesce(b.e)
	for i := 0; i < 10; i++ {
		if _, err := a.db.Add(syncItem(fmt.Sprintf("k%d", i), secitem.ValueData, []byte("from a"))); err != nil {
			t.Fatal(err)
		}
	}
	// b writes a newer k3 into etcd while a's batch is between read and write.
	time.Sleep(2 * time.Millisecond)
	if _, err := b.db.Add(syncItem("k3", secitem.ValueData, []byte("from b, newer"))); err != nil {
		t.Fatal(err)
	}
	fired := 0
	beforeBatchPut = func() {
		fired++
		if fired == 1 {
			if _, err := b.e.push(t.Context()); err != nil {
				t.Errorf("b's push: %v", err)
			}
		}
	}
	pushed, err := a.e.push(t.Context())
	beforeBatchPut = nil // before converge sets the engines going
	if err != nil {
		t.Fatal(err)
	}
	if fired == 0 {
		t.Fatal("the batch path was not taken")
	}
	if pushed != 9 {
		t.Fatalf("a pushed %d items, want 9 (k3 in etcd is newer and is taken instead)", pushed)
	}
	got, err := a.db.CopyMatching(syncItem("k3", secitem.ReturnData, true))
	if err != nil || string(got.([]byte)) != "from b, newer" {
		t.Fatalf("a's k3 after the conflict: %q, %v; want b's newer version", got, err)
	}
	converge(t, []*member{a, b})
}
