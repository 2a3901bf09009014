package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

func testDevice() protect.Device {
	return protect.NewStaticDevice(bytes.Repeat([]byte{9}, protect.SecretSize))
}

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	return openTestWith(t, Options{})
}

// openTestWith is openTest with options (the test device unless opts
// names one).
func openTestWith(t *testing.T, opts Options) (*DB, string) {
	t.Helper()
	if opts.Device == nil {
		opts.Device = testDevice()
	}
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// reopen opens the store at path again, with the test device; the test
// closes it at its end if nothing did before.
func reopen(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func item(acct, secret string) (schema.Fields, schema.Fields) {
	c := schema.GenericPassword
	var f schema.Fields
	for code, v := range map[string]schema.Value{
		"acct": schema.String(acct), "svce": schema.String("svc"), "agrp": schema.String("G"),
		"pdmn": schema.String("ak"), "sync": schema.Number(0), "tomb": schema.Number(0),
		"musr": schema.Data(nil), "cdat": schema.Date(time.Unix(1, 0)), "mdat": schema.Date(time.Unix(1, 0)),
	} {
		f = f.Set(c.Attr(code), v)
	}
	s := schema.Fields{}.Set(c.Attr("v_Data"), schema.Data([]byte(secret)))
	return f, s
}

func insert(t *testing.T, db *DB, acct, secret string) *Record {
	t.Helper()
	f, s := item(acct, secret)
	var r *Record
	err := db.Update(func(tx *Tx) error {
		var err error
		r, _, err = tx.Insert(schema.GenericPassword, f, s)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// read opens the item of row, returning its secret or the status.
func read(db *DB, row uint64) (string, status.Code) {
	var out string
	var st status.Code
	err := db.View(func(tx *Tx) error {
		out, st = readIn(tx, row)
		return nil
	})
	if err != nil {
		return "", status.Of(err)
	}
	return out, st
}

// readIn is read inside tx, which may be a write transaction.
func readIn(tx *Tx, row uint64) (string, status.Code) {
	raw := tx.btx.Bucket(classBucket(schema.GenericPassword)).Get(rowKey(row))
	if raw == nil {
		return "", status.ItemNotFound
	}
	r, err := parseRecord(schema.GenericPassword, row, bytes.Clone(raw))
	if err != nil {
		return "", status.Decode
	}
	_, sec, err := tx.Open(r, true)
	if err != nil {
		return "", status.Of(err)
	}
	v, _ := sec.Get("v_Data")
	return string(v.Data), status.OK
}

func rawGet(t *testing.T, db *DB, row uint64) []byte {
	var b []byte
	db.bolt.View(func(btx *bbolt.Tx) error {
		b = bytes.Clone(btx.Bucket(classBucket(schema.GenericPassword)).Get(rowKey(row)))
		return nil
	})
	return b
}

func rawPut(t *testing.T, db *DB, row uint64, b []byte) {
	if err := db.bolt.Update(func(btx *bbolt.Tx) error {
		return btx.Bucket(classBucket(schema.GenericPassword)).Put(rowKey(row), b)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestInsertFindOpen(t *testing.T) {
	db, _ := openTest(t)
	a := insert(t, db, "alice", "pw-a")
	b := insert(t, db, "bob", "pw-b")
	if a.Row >= b.Row {
		t.Fatal("rows are not increasing")
	}
	for _, r := range []*Record{a, b} {
		if got, st := read(db, r.Row); st != status.OK {
			t.Fatalf("read row %d: %v", r.Row, st)
		} else if got != map[uint64]string{a.Row: "pw-a", b.Row: "pw-b"}[r.Row] {
			t.Fatalf("row %d: %q", r.Row, got)
		}
	}
	c := schema.GenericPassword
	var rows []uint64
	db.View(func(tx *Tx) error {
		return tx.Find(Query{Class: c, Filters: schema.Fields{{Attr: c.Attr("acct"), Value: schema.Data([]byte("bob"))}}}, func(r *Record) (bool, error) {
			rows = append(rows, r.Row)
			return true, nil
		})
	})
	if len(rows) != 1 || rows[0] != b.Row {
		t.Fatalf("Find by indexed acct: %v", rows)
	}
	rows = nil
	db.View(func(tx *Tx) error {
		return tx.Find(Query{Class: c, Groups: []string{"other"}}, func(r *Record) (bool, error) {
			rows = append(rows, r.Row)
			return true, nil
		})
	})
	if len(rows) != 0 {
		t.Fatalf("Find with another group: %v", rows)
	}
}

// Sealed parts moved between rows, bit flips, truncation and an older
// version of a row put back all fail authentication.
func TestTamper(t *testing.T) {
	db, _ := openTest(t)
	a := insert(t, db, "alice", "pw-a")
	b := insert(t, db, "bob", "pw-b")
	rawA, rawB := rawGet(t, db, a.Row), rawGet(t, db, b.Row)
	ra, _ := parseRecord(schema.GenericPassword, a.Row, rawA)
	rb, _ := parseRecord(schema.GenericPassword, b.Row, rawB)

	t.Run("whole record moved to another row", func(t *testing.T) {
		rawPut(t, db, b.Row, rawA)
		defer rawPut(t, db, b.Row, rawB)
		if _, st := read(db, b.Row); st != status.Decode {
			t.Fatalf("status %v", st)
		}
	})
	t.Run("secret swapped between items", func(t *testing.T) {
		mixed := append(bytes.Clone(rawA[:ra.attrEnd]), rb.sealedSecret()...)
		rawPut(t, db, a.Row, mixed)
		defer rawPut(t, db, a.Row, rawA)
		if _, st := read(db, a.Row); st != status.Decode {
			t.Fatalf("status %v", st)
		}
	})
	t.Run("every bit flip", func(t *testing.T) {
		for i := 0; i < len(rawA)*8; i += 3 {
			bad := bytes.Clone(rawA)
			bad[i/8] ^= 1 << (i % 8)
			rawPut(t, db, a.Row, bad)
			if _, st := read(db, a.Row); st != status.Decode {
				t.Fatalf("bit %d: status %v, want errSecDecode", i, st)
			}
		}
		rawPut(t, db, a.Row, rawA)
	})
	t.Run("truncation", func(t *testing.T) {
		for n := 0; n < len(rawA); n += 7 {
			rawPut(t, db, a.Row, rawA[:n])
			if _, st := read(db, a.Row); st != status.Decode {
				t.Fatalf("truncated to %d: status %v, want errSecDecode", n, st)
			}
		}
		rawPut(t, db, a.Row, rawA)
	})
	t.Run("older version replayed", func(t *testing.T) {
		f, s := item("alice", "pw-a2")
		if err := db.Update(func(tx *Tx) error {
			_, _, err := tx.Rewrite(ra, f, s)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got, st := read(db, a.Row); st != status.OK || got != "pw-a2" {
			t.Fatalf("after rewrite: %q %v", got, st)
		}
		rawPut(t, db, a.Row, rawA) // the version-1 record back
		if got, st := read(db, a.Row); st != status.Decode {
			t.Fatalf("replayed old version read as %q %v", got, st)
		}
	})
}

func TestVersionTableChecks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	a := insert(t, db, "alice", "pw")
	var oldChunk []byte
	db.bolt.View(func(btx *bbolt.Tx) error {
		k, _ := chunkOf(a.Row)
		oldChunk = getChunk(btx, k)
		return nil
	})
	insert(t, db, "bob", "pw")
	db.Close()

	// A damaged chunk makes its rows unreadable.
	bdb, _ := bbolt.Open(path, 0o600, nil)
	k, _ := chunkOf(a.Row)
	bdb.Update(func(btx *bbolt.Tx) error {
		c := getChunk(btx, k)
		c[0] ^= 1
		return putChunk(btx, k, c)
	})
	bdb.Close()
	db, err = Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	if !db.badChunks[binary.BigEndian.Uint64(k)] {
		t.Fatal("the damaged chunk was not noticed")
	}
	if _, st := read(db, a.Row); st != status.Decode {
		t.Fatalf("row in a damaged chunk: %v", st)
	}
	db.Close()

	// A whole chunk replayed from an older copy: valid MAC, wrong root.
	bdb, _ = bbolt.Open(path, 0o600, nil)
	bdb.Update(func(btx *bbolt.Tx) error { return putChunk(btx, k, oldChunk) })
	bdb.Close()
	db, err = Open(path, Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.rootMatches {
		t.Fatal("a replayed chunk was not noticed")
	}
}

func TestCodecRoundTrip(t *testing.T) {
	f, s := item("alice", "secret")
	for _, fs := range []schema.Fields{f, s, nil} {
		enc := encodeFields(nil, fs)
		if len(enc)%padBlock != 0 {
			t.Fatalf("not padded: %d", len(enc))
		}
		dec, err := decodeFields(schema.GenericPassword, enc)
		if err != nil {
			t.Fatal(err)
		}
		if again := encodeFields(nil, dec); !bytes.Equal(enc, again) {
			t.Fatal("round trip is not byte-identical")
		}
	}
	enc := encodeFields(nil, f)
	bad := bytes.Clone(enc)
	bad[len(bad)-1] = 1 // non-zero padding
	if _, err := decodeFields(schema.GenericPassword, bad); err == nil {
		t.Fatal("non-zero padding accepted")
	}
	if _, err := decodeFields(schema.Certificate, enc); err == nil {
		t.Fatal("a genp attribute list decoded as a certificate")
	}
	if _, err := decodeFields(schema.GenericPassword, append(bytes.Clone(enc), make([]byte, padBlock)...)); err == nil {
		t.Fatal("a whole block of extra padding accepted")
	}
}

// TestDecodeShared checks decoding that shares the plaintext buffer (a
// read's secret): the values are slices of the buffer, not copies, and
// each is capped at its length, so a caller appending to one secret value
// cannot overwrite the next (inet items have several).
func TestDecodeShared(t *testing.T) {
	c := schema.InternetPassword
	fs := schema.Fields{}.
		Set(c.Attr("v_Data"), schema.Data([]byte("first"))).
		Set(c.Attr("bin0"), schema.Data([]byte("second")))
	enc := encodeFields(nil, fs)
	dec, err := decodeFieldsIn(c, enc, true)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := dec.Get("v_Data")
	second, _ := dec.Get("bin0")
	if string(first.Data) != "first" || string(second.Data) != "second" {
		t.Fatal("shared decode gave other values")
	}
	enc[bytes.Index(enc, []byte("first"))] = 'F'
	if string(first.Data) != "First" {
		t.Fatal("shared decode copied the value")
	}
	for _, f := range dec {
		if cap(f.Value.Data) != len(f.Value.Data) {
			t.Fatalf("shared value %s has capacity %d beyond its %d bytes", f.Attr.Code, cap(f.Value.Data), len(f.Value.Data))
		}
	}
	// Appending to the value encoded first must not reach the next one.
	next := string(dec[1].Value.Data)
	_ = append(dec[0].Value.Data, "XXXXXXXXXXXXXXXX"...)
	if string(dec[1].Value.Data) != next {
		t.Fatal("appending to one shared value changed the next")
	}
	copied, err := decodeFields(c, enc)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := copied.Get("v_Data"); &v.Data[0] == &first.Data[0] {
		t.Fatal("decodeFields shared the buffer")
	}
}

// TestEncodedLen checks that encodedLen, which sizes the plaintext buffer
// before encoding, agrees with encodeFields: every kind of value, lengths
// whose uvarint takes one, two and three bytes, and lists that end on a
// padding boundary or just past one.
func TestEncodedLen(t *testing.T) {
	c := schema.InternetPassword
	f, s := item("alice", "secret")
	lists := []schema.Fields{nil, f, s}
	for _, n := range []int{0, 1, 127, 128, 300, 16383, 16384, 20000} {
		lists = append(lists, schema.Fields{}.
			Set(c.Attr("v_Data"), schema.Data(make([]byte, n))).
			Set(c.Attr("bin0"), schema.Data([]byte("x"))))
		lists = append(lists, schema.Fields{}.Set(c.Attr("acct"), schema.String(strings.Repeat("a", n))))
	}
	for pad := range padBlock + 1 {
		lists = append(lists, schema.Fields{}.Set(c.Attr("acct"), schema.String(strings.Repeat("b", pad))))
	}
	for i, fs := range lists {
		if got, want := encodedLen(fs), len(encodeFields(nil, fs)); got != want {
			t.Fatalf("list %d: encodedLen %d, encoding %d bytes", i, got, want)
		}
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	db, path := openTest(t)
	insert(t, db, "alice", "pw")
	db.Close()
	ro, err := Open(path, Options{Device: testDevice(), ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, st := read(ro, 1); st != status.OK || got != "pw" {
		t.Fatalf("read-only read: %q %v", got, st)
	}
	f, s := item("bob", "pw")
	err = ro.Update(func(tx *Tx) error { _, _, err := tx.Insert(schema.GenericPassword, f, s); return err })
	if status.Of(err) != status.ReadOnly {
		t.Fatalf("write to a read-only store: %v", err)
	}
}

// TestTamperMatrix: every ordered swap of sealed attributes, sealed
// secrets, wrapped item keys and whole records among 50 items, an older
// version of each item replayed in place, and every single-bit flip of a
// sample of records, are rejected with errSecDecode; no case returns a
// plaintext.
func TestTamperMatrix(t *testing.T) {
	db, _ := openTest(t)
	db.bolt.NoSync = true // the raw edits below need no durability
	const n = 50
	recs := make([]*Record, n)
	raws := make([][]byte, n)
	for i := range recs {
		recs[i] = insert(t, db, "user"+string(rune('A'+i)), "pw")
		raws[i] = rawGet(t, db, recs[i].Row)
	}
	parsed := make([]*Record, n)
	for i := range raws {
		parsed[i], _ = parseRecord(schema.GenericPassword, recs[i].Row, raws[i])
	}
	splice := func(base *Record, attrs, secret []byte) []byte {
		out := bytes.Clone(base.raw[:base.hdrLen+protect.WrappedItemKeySize])
		out = binary.AppendUvarint(out, uint64(len(attrs)))
		out = append(out, attrs...)
		return append(out, secret...)
	}
	withKey := func(base *Record, wrapped []byte) []byte {
		out := bytes.Clone(base.raw)
		copy(out[base.hdrLen:], wrapped)
		return out
	}
	cases, rejected := 0, 0
	others := map[status.Code]int{}
	// A batch of cases runs in one write transaction that is rolled back:
	// each case writes its tampered record, reads it back and puts the
	// genuine one back before the next. The store never holds a tampered
	// record, and tens of thousands of cases cost no commit (each bbolt
	// write transaction reads an environment variable that go test logs
	// to a file of limited size).
	type tamper struct {
		row       uint64
		bad, good []byte
	}
	var batch []tamper
	try := func(row uint64, bad, good []byte) { batch = append(batch, tamper{row, bad, good}) }
	// The first case of each kind is also committed and read back in a
	// read transaction (the path a caller's read takes: the direct page
	// reader and the version cache), then the genuine record is put back:
	// sample(k) does so for the last k cases tried.
	sampled := 0
	sample := func(k int) {
		for _, c := range batch[len(batch)-k:] {
			rawPut(t, db, c.row, c.bad)
			_, st := read(db, c.row)
			rawPut(t, db, c.row, c.good)
			if st != status.Decode {
				t.Fatalf("committed tampered record (sample %d): status %v, want errSecDecode", sampled, st)
			}
			sampled++
		}
	}
	run := func() {
		err := db.Update(func(tx *Tx) error {
			items := tx.btx.Bucket(classBucket(schema.GenericPassword))
			for _, c := range batch {
				if err := items.Put(rowKey(c.row), c.bad); err != nil {
					return err
				}
				cases++
				if _, st := readIn(tx, c.row); st == status.Decode {
					rejected++
				} else {
					others[st]++
				}
				if err := items.Put(rowKey(c.row), c.good); err != nil {
					return err
				}
			}
			return errRollBack
		})
		if err != errRollBack {
			t.Fatalf("tamper batch: %v", err)
		}
		batch = batch[:0]
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i == j {
				continue
			}
			a, b := parsed[i], parsed[j]
			try(a.Row, splice(a, b.sealedAttrs(), a.sealedSecret()), raws[i])
			try(a.Row, splice(a, a.sealedAttrs(), b.sealedSecret()), raws[i])
			try(a.Row, raws[j], raws[i])
			try(a.Row, withKey(a, b.wrapped()), raws[i])
			if i == 0 && j == 1 {
				sample(4)
			}
		}
	}
	run()
	// Each item's previous version, replayed after a rewrite.
	for i := 0; i < n; i++ {
		f, s := item("user"+string(rune('A'+i)), "pw-2")
		err := db.Update(func(tx *Tx) error {
			r, err := parseRecord(schema.GenericPassword, recs[i].Row, bytes.Clone(raws[i]))
			if err != nil {
				return err
			}
			recs[i], _, err = tx.Rewrite(r, f, s)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		current := rawGet(t, db, recs[i].Row) // Rewrite keeps the row
		try(recs[i].Row, raws[i], current)
		if i == 0 {
			sample(1)
		}
		raws[i] = current
	}
	for _, i := range []int{0, 17, 49} {
		for bit := 0; bit < len(raws[i])*8; bit++ {
			bad := bytes.Clone(raws[i])
			bad[bit/8] ^= 1 << (bit % 8)
			try(recs[i].Row, bad, raws[i])
			if bit == 0 {
				sample(1)
			}
		}
	}
	run()
	if rejected != cases {
		t.Fatalf("%d of %d tampered records were not rejected with errSecDecode: %v", cases-rejected, cases, others)
	}
	t.Logf("%d tampered records, all rejected (%d of them also committed and read)", cases, sampled)
	for i := range recs {
		if _, st := read(db, recs[i].Row); st != status.OK {
			t.Fatalf("item %d unreadable after restoring", i)
		}
	}
}

// getChunk returns a copy of version chunk k (versions ‖ MAC) wherever it
// is stored: in the tip, or in vers.
func getChunk(btx *bbolt.Tx, k []byte) []byte {
	if n, v, ok := tailOf(btx); ok && n == binary.BigEndian.Uint64(k) {
		return bytes.Clone(v)
	}
	return bytes.Clone(btx.Bucket(bucketVers).Get(k))
}

// putChunk stores v as version chunk k where getChunk found it, without
// a MAC or root update (it simulates damage and replays).
func putChunk(btx *bbolt.Tx, k, v []byte) error {
	if n, _, ok := tailOf(btx); ok && n == binary.BigEndian.Uint64(k) {
		return btx.Bucket(bucketTip).Put(keyVTail, append(bytes.Clone(k), v...))
	}
	return btx.Bucket(bucketVers).Put(k, v)
}

// TestHolder checks that Holder, which uses the tags Prepare computed,
// finds what ByPrimaryKey finds: for each of several items, the item with
// the same primary key, and nothing when the key differs in the lookup key
// (acct) or only in a shared primary-key attribute (agrp, sync). Several
// items, so a wrong posting (one every item shares, such as the
// service's) cannot pass by luck.
func TestHolder(t *testing.T) {
	db, _ := openTest(t)
	c := schema.GenericPassword
	accts := []string{"alice", "bob", "carol", "dave", "erin"}
	held := map[string]uint64{}
	for _, a := range accts[:4] {
		held[a] = insert(t, db, a, "s").Row
	}
	for _, a := range accts {
		for _, tc := range []struct {
			name string
			set  *schema.Field
			want bool
		}{
			{"same key", nil, a != "erin"},
			{"other group", &schema.Field{Attr: c.Attr("agrp"), Value: schema.String("H")}, false},
			{"synchronizable", &schema.Field{Attr: c.Attr("sync"), Value: schema.Number(1)}, false},
		} {
			f, sec := item(a, "other")
			if tc.set != nil {
				f = f.Set(tc.set.Attr, tc.set.Value)
			}
			s, err := db.Prepare(c, f, sec)
			if err != nil {
				t.Fatal(err)
			}
			db.View(func(tx *Tx) error {
				got, err := tx.Holder(s)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := tx.ByPrimaryKey(c, s.Fields)
				if (got != nil) != tc.want || (want != nil) != tc.want {
					t.Fatalf("%s, %s: Holder found=%v, ByPrimaryKey found=%v; want %v", a, tc.name, got != nil, want != nil, tc.want)
				}
				if got != nil && got.Row != held[a] {
					t.Fatalf("%s, %s: Holder found row %d, want %d", a, tc.name, got.Row, held[a])
				}
				return nil
			})
		}
	}
}

// TestPrepareLeavesFieldsAlone checks that Prepare, which adds sha1 to the
// attributes it seals, does not write into the caller's list (and that it
// sizes the record exactly): sha1 sorts
// before musr, so inserting it in place in a list with spare capacity
// would shift the caller's own attributes (a group commit that runs an
// Add's function again would then seal a damaged list).
func TestPrepareLeavesFieldsAlone(t *testing.T) {
	db, _ := openTest(t)
	f, sec := item("alice", "pw")
	roomy := append(make(schema.Fields, 0, len(f)+8), f...)
	before := slices.Clone(roomy)
	s, err := db.Prepare(schema.GenericPassword, roomy, sec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range before {
		if roomy[i].Attr != before[i].Attr {
			t.Fatalf("Prepare changed the caller's attribute %d: %s became %s", i, before[i].Attr.Code, roomy[i].Attr.Code)
		}
	}
	if _, ok := s.Fields.Get("sha1"); !ok {
		t.Fatal("the sealed attributes have no sha1")
	}
	if len(s.Fields) != len(before)+1 {
		t.Fatalf("sealed %d attributes, want %d", len(s.Fields), len(before)+1)
	}
	// The record is allocated once, at its final size.
	if cap(s.rec) != len(s.rec) {
		t.Fatalf("record of %d bytes in a buffer of %d", len(s.rec), cap(s.rec))
	}
}

// TestVersionCache checks the version cache's rules on a bare cache: an
// entry serves only its own commit and chunk, it is a copy of what was
// read, and an older commit's chunk does not push out a newer one's.
func TestVersionCache(t *testing.T) {
	var c versionCache
	chunk := func(v byte) []byte { return bytes.Repeat([]byte{v}, chunkRows*8) }
	v5 := chunk(5)
	c.put(10, 3, v5)
	v5[0] = 99 // the caller's bytes (the mapped file) may change later
	if e := c.get(10, 3); e == nil || e.versions[0] != 5 {
		t.Fatalf("get after put: %v", e)
	}
	if c.get(11, 3) != nil || c.get(9, 3) != nil {
		t.Fatal("an entry served another commit")
	}
	// Chunks a table's size apart share a slot and must not alias.
	if c.get(10, 3+maxCachedChunks) != nil {
		t.Fatal("an entry served another chunk of its slot")
	}
	c.put(9, 3, chunk(4)) // an older reader
	if e := c.get(10, 3); e == nil || e.versions[0] != 5 {
		t.Fatal("an older commit's chunk replaced a newer one's")
	}
	c.put(12, 3+maxCachedChunks, chunk(6)) // a newer commit takes the slot
	if e := c.get(12, 3+maxCachedChunks); e == nil || e.versions[0] != 6 {
		t.Fatal("a newer commit's chunk was not stored")
	}
	if c.get(10, 3) != nil {
		t.Fatal("a replaced entry still served")
	}
}

// TestVersionCacheConcurrent puts and gets chunks of many commits from
// several goroutines at once (run it under -race): every hit must hold
// the versions of its own commit and chunk, and once the newest commit's
// entries are stored, no older commit's put may take their slots. (It
// does not force the interleaving the compare-and-swap in put guards
// against, an older put loading the slot just before a newer one stores
// into it; that race costs a later lookup at worst.)
func TestVersionCacheConcurrent(t *testing.T) {
	var c versionCache
	// Chunk n at commit txid holds txid*1000+n in every slot.
	content := func(txid, n uint64) []byte {
		b := make([]byte, chunkRows*8)
		for i := 0; i < chunkRows; i++ {
			binary.BigEndian.PutUint64(b[i*8:], txid*1000+n)
		}
		return b
	}
	const newest = 20
	chunks := []uint64{1, 2, 3, 1 + maxCachedChunks, 2 + maxCachedChunks}
	// inParallel runs fn in four goroutines, each with its own generator.
	inParallel := func(seed uint64, fn func(rng *mrand.Rand)) {
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fn(mrand.New(mrand.NewPCG(uint64(g), seed)))
			}()
		}
		wg.Wait()
	}
	inParallel(7, func(rng *mrand.Rand) {
		for range 20_000 {
			txid := 1 + rng.Uint64N(newest)
			n := chunks[rng.IntN(len(chunks))]
			if e := c.get(txid, n); e != nil {
				for i := 0; i < chunkRows; i++ {
					if got := binary.BigEndian.Uint64(e.versions[i*8:]); got != txid*1000+n {
						t.Errorf("chunk %d at commit %d: slot %d holds %d", n, txid, i, got)
						return
					}
				}
				continue
			}
			c.put(txid, n, content(txid, n))
		}
	})
	for _, n := range chunks[:3] {
		c.put(newest+1, n, content(newest+1, n))
	}
	inParallel(8, func(rng *mrand.Rand) {
		for range 5_000 {
			txid, n := 1+rng.Uint64N(newest), chunks[rng.IntN(len(chunks))]
			c.put(txid, n, content(txid, n))
		}
	})
	for _, n := range chunks[:3] {
		if c.get(newest+1, n) == nil {
			t.Errorf("an older commit's put replaced chunk %d of the newest commit", n)
		}
	}
}

// TestReadTxStartsClean checks the read transactions' pool: View hands
// out a Tx whose only set fields are its store and bbolt transaction,
// after the last user of that Tx ran a Find and Reads (cursors, compiled
// queries, buffers) and returned, or did the same and then panicked in
// the middle of its Find (as a damaged page makes a read panic).
func TestReadTxStartsClean(t *testing.T) {
	db, _ := openTest(t)
	for i := range 20 {
		insert(t, db, fmt.Sprint("acct-", i), "pw")
	}
	for i := range 50 {
		panics := i%2 == 1
		err := db.View(func(tx *Tx) error {
			return tx.Find(Query{Class: schema.GenericPassword}, func(r *Record) (bool, error) {
				_, _, err := tx.Read(r, PartAttrs|PartSecret)
				if panics && r.Row > 5 {
					panic("a damaged page")
				}
				return true, err
			})
		})
		if (err != nil) != panics {
			t.Fatalf("View: %v", err)
		}
		db.View(func(tx *Tx) error {
			rest := *tx
			if rest.db != db || rest.btx == nil {
				t.Fatal("the transaction lacks its store or bbolt transaction")
			}
			rest.db, rest.btx = nil, nil
			if !reflect.ValueOf(rest).IsZero() {
				t.Fatal("a read transaction began with state left by an earlier one")
			}
			return nil
		})
	}
}
