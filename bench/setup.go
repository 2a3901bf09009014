package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/keyring"
	"go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
	_ "modernc.org/sqlite"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

const secretSize = 256

// ---- the limit model ---------------------------------------------------

// limitModel is performance.md's physical limit: a bbolt file of sealed
// records; a read is View + Get + one HMAC-SHA256 index probe + one
// AES-256-GCM unwrap of the item key under a cached class key + one
// XChaCha20-Poly1305 open; a durable write is the same sealing and one Put
// in one fsync'd transaction.
type limitModel struct {
	db    *bbolt.DB
	class cipher.AEAD
	mac   func()
	n     int
	next  atomic.Uint64
}

func newLimit(path string, n int) *limitModel {
	db, err := bbolt.Open(path, 0o600, nil)
	must(err)
	var ck [32]byte
	rand.Read(ck[:])
	blk, _ := aes.NewCipher(ck[:])
	class, _ := cipher.NewGCM(blk)
	h := hmac.New(sha256.New, ck[:])
	var mu sync.Mutex
	m := &limitModel{db: db, class: class, n: n, mac: func() { mu.Lock(); h.Reset(); h.Write(ck[:]); h.Sum(nil); mu.Unlock() }}
	m.next.Store(uint64(n))
	for start := 0; start < n; start += 10_000 {
		must(db.Update(func(tx *bbolt.Tx) error {
			b, _ := tx.CreateBucketIfNotExists([]byte("items"))
			for i := start; i < min(start+10_000, n); i++ {
				if err := b.Put(key(uint64(i)), m.record()); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	return m
}

// account is item i's account name ("user-<i>"), the key the peers' and
// secitemdb's reads ask for. Each read builds it, as the limit model
// builds its own 8-byte key: until Run 13 secitemdb's read took it from a
// table of all n names, which can cost a read memory misses (at 100k
// items, 1.6 MB of string headers and the strings) that no other store's
// read paid (BENCHMARKS.md, Run 13).
func account(i int) string { return "user-" + strconv.Itoa(i) }

func key(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// warm reads every record once, in key order.
func (m *limitModel) warm() {
	must(m.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("items"))
		for i := range m.n {
			if b.Get(key(uint64(i))) == nil {
				return fmt.Errorf("limit model: record %d missing", i)
			}
		}
		return nil
	}))
}

func (m *limitModel) record() []byte {
	var ik [32]byte
	rand.Read(ik[:])
	nonce := make([]byte, 12)
	rand.Read(nonce)
	rec := m.class.Seal(nonce, nonce, ik[:], nil)
	x, _ := chacha20poly1305.NewX(ik[:])
	xn := make([]byte, 24)
	rand.Read(xn)
	return x.Seal(append(rec, xn...), xn, make([]byte, secretSize), nil)
}

func (m *limitModel) read(b *testing.B) {
	for i := 0; i < b.N; i++ {
		k := key(mrand.Uint64N(uint64(m.n)))
		err := m.db.View(func(tx *bbolt.Tx) error {
			v := tx.Bucket([]byte("items")).Get(k)
			m.mac()
			return m.open(v)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// open unwraps record v's item key under the class key and opens its
// secret (record makes v).
func (m *limitModel) open(v []byte) error {
	var ik [32]byte
	if _, err := m.class.Open(ik[:0], v[:12], v[12:60], nil); err != nil {
		return err
	}
	x, _ := chacha20poly1305.NewX(ik[:])
	_, err := x.Open(nil, v[60:84], v[84:], nil)
	return err
}

func (m *limitModel) put(b *testing.B) {
	for i := 0; i < b.N; i++ {
		k := key(m.next.Add(1))
		rec := m.record()
		if err := m.db.Update(func(tx *bbolt.Tx) error {
			m.mac()
			return tx.Bucket([]byte("items")).Put(k, rec)
		}); err != nil {
			b.Fatal(err)
		}
	}
}

func (m *limitModel) batch64(b *testing.B) {
	m.db.MaxBatchSize = 64
	b.SetParallelism((64 + 1) / 2)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := key(m.next.Add(1))
			rec := m.record()
			if err := m.db.Batch(func(tx *bbolt.Tx) error {
				m.mac()
				return tx.Bucket([]byte("items")).Put(k, rec)
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// layoutModel writes what one secitemdb Add wrote in file format 1,
// without secitemdb: a sealed record at the next row, three postings
// (12-byte keyed tag ‖ row: two at scattered places in the index, like
// the lookup-key and account postings, one at the end of a shared tag's
// list, like the service posting) and the row's version chunk (64 rows
// per 520-byte chunk). It is not a goal's reference: it showed how much
// of the gap to the Batch of bare records was the index layout, and now
// shows what the posting log (format 2) saves.
//
// Its read is the layout ARCHITECTURE.md fixes, read through bbolt's own
// API with nothing of secitemdb's: the limit model's read, except that
// the record is found through the keyed index (the row's lookup-key
// posting: HMAC of the account, then a cursor Seek in the index) instead
// of by a key the caller already holds. No dictionary, no header check,
// no version check. It is not a lower bound: secitemdb's lookup cache
// and direct page reader find the row for less than bbolt's cursor does
// (BENCHMARKS.md, Run 15).
type layoutModel struct {
	db   *bbolt.DB
	lm   *limitModel
	next atomic.Uint64
	tag  [12]byte
	mu   sync.Mutex
	mac  hash.Hash // keys the lookup-key postings; guarded by mu
	buf  []byte    // guarded by mu
	sum  []byte    // guarded by mu
}

func newLayout(path string, lm *limitModel, n int) *layoutModel {
	db, err := bbolt.Open(path, 0o600, nil)
	must(err)
	var ik [32]byte
	rand.Read(ik[:])
	m := &layoutModel{db: db, lm: lm, mac: hmac.New(sha256.New, ik[:])}
	rand.Read(m.tag[:])
	m.next.Store(uint64(n))
	for start := 0; start < n; start += 10_000 {
		must(db.Update(func(tx *bbolt.Tx) error {
			for i := start; i < min(start+10_000, n); i++ {
				if err := m.put(tx, uint64(i), lm.record()); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	return m
}

func (m *layoutModel) put(tx *bbolt.Tx, row uint64, rec []byte) error {
	items, _ := tx.CreateBucketIfNotExists([]byte("items"))
	idx, _ := tx.CreateBucketIfNotExists([]byte("idx"))
	vers, _ := tx.CreateBucketIfNotExists([]byte("vers"))
	items.FillPercent, vers.FillPercent = 0.95, 0.95
	if err := items.Put(key(row), rec); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		pk := make([]byte, 20)
		switch i {
		case 0:
			t := m.lookupTag(account(int(row)))
			copy(pk, t[:])
		case 1:
			rand.Read(pk[:12])
		default:
			copy(pk, m.tag[:])
		}
		binary.BigEndian.PutUint64(pk[12:], row)
		if err := idx.Put(pk, nil); err != nil {
			return err
		}
	}
	chunk := bytes.Clone(vers.Get(key(row / 64)))
	if len(chunk) != 520 {
		chunk = make([]byte, 520)
	}
	binary.BigEndian.PutUint64(chunk[(row%64)*8:], 1)
	return vers.Put(key(row/64), chunk)
}

// lookupTag is the keyed tag of the lookup-key posting of the item whose
// account is acct.
func (m *layoutModel) lookupTag(acct string) (t [12]byte) {
	m.mu.Lock()
	m.buf = append(m.buf[:0], acct...)
	m.mac.Reset()
	m.mac.Write(m.buf)
	m.sum = m.mac.Sum(m.sum[:0])
	copy(t[:], m.sum)
	m.mu.Unlock()
	return t
}

// read reads a random item among all n (readOne).
func (m *layoutModel) read(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := m.readOne(account(mrand.IntN(m.lm.n))); err != nil {
			b.Fatal(err)
		}
	}
}

// readOne finds the item whose account is acct through its lookup-key
// posting and opens its secret as the limit model does.
func (m *layoutModel) readOne(acct string) error {
	return m.db.View(func(tx *bbolt.Tx) error {
		t := m.lookupTag(acct)
		k, _ := tx.Bucket([]byte("idx")).Cursor().Seek(t[:])
		if len(k) != 20 || !bytes.Equal(k[:12], t[:]) {
			return fmt.Errorf("layout model: no posting for %s", acct)
		}
		v := tx.Bucket([]byte("items")).Get(k[12:])
		if len(v) < 84 {
			return fmt.Errorf("layout model: no record for %s", acct)
		}
		return m.lm.open(v)
	})
}

func (m *layoutModel) batch64(b *testing.B) {
	m.db.MaxBatchSize = 64
	b.SetParallelism((64 + 1) / 2)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			row := m.next.Add(1)
			rec := m.lm.record()
			if err := m.db.Batch(func(tx *bbolt.Tx) error {
				m.lm.mac()
				return m.put(tx, row, rec)
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// ---- secitemdb -----------------------------------------------------------

type secitemStore struct {
	db    *secitem.DB
	n     int
	next  atomic.Int64
	names []string // every account name, for readFromTable
}

func genp(svce, acct string, secret []byte) secitem.Dict {
	return secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: svce, secitem.AttrAccount: acct, secitem.ValueData: secret}
}

// openSecitem opens a store holding n generic passwords (service
// "bench", accounts "user-<i>", 256-byte secrets), loaded by 64 concurrent
// durable Adds.
func openSecitem(path string, n int) *secitemStore {
	db, err := secitem.Open(path, &secitem.Options{Device: protect.NewStaticDevice(bytes.Repeat([]byte{1}, 32))})
	must(err)
	s := &secitemStore{db: db, n: n}
	secret := make([]byte, secretSize)
	var wg sync.WaitGroup
	var i atomic.Int64
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := i.Add(1) - 1
				if k >= int64(n) {
					return
				}
				if _, err := db.Add(genp("bench", fmt.Sprintf("user-%d", k), secret)); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	return s
}

// warm reads every item once by its primary key, filling the lookup
// cache as a long-running reader would.
func (s *secitemStore) warm() {
	q := secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "bench", secitem.ReturnData: true}
	for i := range s.n {
		q[secitem.AttrAccount] = fmt.Sprintf("user-%d", i)
		_, err := s.db.CopyMatching(q)
		must(err)
	}
}

// read asks for a random item among all n each time, as the limit model
// and the peers do (until Run 8 it cycled through 1,024 prepared queries:
// a working set that stayed in the CPU's caches).
func (s *secitemStore) read(b *testing.B) {
	q := secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "bench", secitem.ReturnData: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q[secitem.AttrAccount] = account(mrand.IntN(s.n))
		if _, err := s.db.CopyMatching(q); err != nil {
			b.Fatal(err)
		}
	}
}

// readFromTable is Runs 8–12's read: the same random item among all n,
// its account name taken from a table of every name instead of built
// (see account), kept as an informative row so later runs compare with
// those.
func (s *secitemStore) readFromTable(b *testing.B) {
	if s.names == nil {
		s.names = make([]string, s.n)
		for i := range s.names {
			s.names[i] = account(i)
		}
	}
	q := secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "bench", secitem.ReturnData: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q[secitem.AttrAccount] = s.names[mrand.IntN(s.n)]
		if _, err := s.db.CopyMatching(q); err != nil {
			b.Fatal(err)
		}
	}
}

// readCycled is Runs 1–7's read: 1,024 prepared queries asked in turn,
// kept as an informative row so later runs compare with earlier ones.
func (s *secitemStore) readCycled(b *testing.B) {
	q := make([]secitem.Dict, 1024)
	for i := range q {
		q[i] = secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "bench",
			secitem.AttrAccount: fmt.Sprintf("user-%d", mrand.IntN(s.n)), secitem.ReturnData: true}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.db.CopyMatching(q[i%len(q)]); err != nil {
			b.Fatal(err)
		}
	}
}

func (s *secitemStore) add(b *testing.B) {
	secret := make([]byte, secretSize)
	for i := 0; i < b.N; i++ {
		if _, err := s.db.Add(genp("bench-add", fmt.Sprint(s.next.Add(1)), secret)); err != nil {
			b.Fatal(err)
		}
	}
}

func (s *secitemStore) add64(b *testing.B) {
	secret := make([]byte, secretSize)
	b.SetParallelism((64 + 1) / 2)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.db.Add(genp("bench-add64", fmt.Sprint(s.next.Add(1)), secret)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// ---- SQLite --------------------------------------------------------------

type sqliteStore struct {
	db   *sql.DB
	n    int
	next atomic.Int64
}

func openSQLite(path string, n int) *sqliteStore {
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	must(err)
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE TABLE items (id TEXT PRIMARY KEY, secret BLOB) WITHOUT ROWID`)
	must(err)
	tx, _ := db.Begin()
	st, _ := tx.Prepare(`INSERT INTO items VALUES (?, ?)`)
	secret := make([]byte, secretSize)
	for i := 0; i < n; i++ {
		_, err := st.Exec(fmt.Sprintf("user-%d", i), secret)
		must(err)
	}
	must(tx.Commit())
	return &sqliteStore{db: db, n: n}
}

func (s *sqliteStore) read(b *testing.B) {
	st, err := s.db.Prepare(`SELECT secret FROM items WHERE id = ?`)
	must(err)
	defer st.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out []byte
		if err := st.QueryRow(account(mrand.IntN(s.n))).Scan(&out); err != nil {
			b.Fatal(err)
		}
	}
}

func (s *sqliteStore) insert(b *testing.B) {
	st, err := s.db.Prepare(`INSERT INTO items VALUES (?, ?)`)
	must(err)
	defer st.Close()
	secret := make([]byte, secretSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := st.Exec(fmt.Sprintf("new-%d", s.next.Add(1)), secret); err != nil {
			b.Fatal(err)
		}
	}
}

// ---- 99designs/keyring, file backend ------------------------------------

type keyringStore struct {
	kr   keyring.Keyring
	n    int
	next atomic.Int64
}

// The file backend encrypts every item with its own PBKDF2-derived key
// (JWE), so its cost per item does not depend on the number of items: 200
// are enough.
func openKeyring(dir string) *keyringStore {
	kr, err := keyring.Open(keyring.Config{
		AllowedBackends:  []keyring.BackendType{keyring.FileBackend},
		FileDir:          dir,
		FilePasswordFunc: keyring.FixedStringPrompt("benchmark password"),
	})
	must(err)
	s := &keyringStore{kr: kr, n: 200}
	secret := make([]byte, secretSize)
	for i := 0; i < s.n; i++ {
		must(kr.Set(keyring.Item{Key: fmt.Sprintf("user-%d", i), Data: secret}))
	}
	return s
}

func (s *keyringStore) read(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := s.kr.Get(account(mrand.IntN(s.n))); err != nil {
			b.Fatal(err)
		}
	}
}

func (s *keyringStore) set(b *testing.B) {
	secret := make([]byte, secretSize)
	for i := 0; i < b.N; i++ {
		if err := s.kr.Set(keyring.Item{Key: fmt.Sprintf("new-%d", s.next.Add(1)), Data: secret}); err != nil {
			b.Fatal(err)
		}
	}
}

// stores are the stores every benchmark runs on (openStores).
//
// The limit model, the layout and secitemdb read from stores of their own,
// loaded with n items, that no benchmark writes to: every read is of a
// store of exactly n items, as the goals say. Until Run 15 each system's
// writes went into the store its reads used: the stores grew by tens of
// thousands of items a round, and secitemdb's writes retired lookup-cache
// entries (and, once the rows passed half the table's entries, replaced
// the table), so its later rounds read a colder cache than a read-mostly
// store has (BENCHMARKS.md, Run 15). One informative row keeps that old
// pattern.
//
// SQLite's reads and inserts still share one store: a second modernc
// SQLite database open in the process slows the first one's reads by a
// quarter or more (Run 15), which would flatter secitemdb. Its inserts
// change its reads' cost far less. The keyring's reads cost the same at
// any size (openKeyring).
type stores struct {
	lm, lmw   *limitModel   // reads, writes
	lay, layw *layoutModel  // reads, writes
	si, siw   *secitemStore // reads, writes
	sq        *sqliteStore
	kr        *keyringStore
}

// openStores builds every store, each loaded with n items (the keyring
// with its own count).
func openStores(dir string, n int) *stores {
	t0 := time.Now()
	s := &stores{}
	s.lm = newLimit(filepath.Join(dir, "limit.db"), n)
	s.lmw = newLimit(filepath.Join(dir, "limit-writes.db"), n)
	s.lay = newLayout(filepath.Join(dir, "layout.db"), s.lm, n)
	s.layw = newLayout(filepath.Join(dir, "layout-writes.db"), s.lmw, n)
	s.si = openSecitem(filepath.Join(dir, "secitem.keychain"), n)
	s.siw = openSecitem(filepath.Join(dir, "secitem-writes.keychain"), n)
	s.sq = openSQLite(filepath.Join(dir, "sqlite.db"), n)
	kd := filepath.Join(dir, "keyring")
	must(os.MkdirAll(kd, 0o700))
	s.kr = openKeyring(kd)
	fmt.Fprintf(os.Stderr, "bench: stores loaded in %v\n", time.Since(t0).Round(time.Millisecond))
	return s
}

// benches returns the benchmarks, in the order of the tables.
func (s *stores) benches() []*bench {
	return []*bench{
		{Name: "read/limit model", Group: "read", run: s.lm.read},
		{Name: "read/the layout through bbolt (informative)", Group: "read", run: s.lay.read},
		{Name: "read/secitemdb", Group: "read", run: s.si.read},
		{Name: "read/secitemdb, on the store the writes grow (Runs 3–15)", Group: "read", run: s.siw.read},
		{Name: "read/secitemdb, names from a table (Runs 8–12)", Group: "read", run: s.si.readFromTable},
		{Name: "read/secitemdb, 1,024 keys cycled (Runs 1–7)", Group: "read", run: s.si.readCycled},
		{Name: "read/SQLite WAL", Group: "read", run: s.sq.read},
		{Name: "read/keyring file", Group: "read", run: s.kr.read},
		{Name: "write/limit model", Group: "durable write", run: s.lmw.put},
		{Name: "write/secitemdb", Group: "durable write", run: s.siw.add},
		{Name: "write/SQLite WAL", Group: "durable write", run: s.sq.insert},
		{Name: "write/keyring file", Group: "durable write", run: s.kr.set},
		{Name: "write64/bbolt Batch", Group: "64 writers", run: s.lmw.batch64},
		{Name: "write64/format-1 layout", Group: "64 writers", run: s.layw.batch64},
		{Name: "write64/secitemdb", Group: "64 writers", run: s.siw.add64},
	}
}
