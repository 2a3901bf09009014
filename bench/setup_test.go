package main

import (
	"flag"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"
)

// The layout's read finds every item through its lookup-key posting and
// opens its secret, and finds nothing for an account it never stored: it
// measures an index probe, not a lucky Seek.
func TestLayoutReadFindsItsItems(t *testing.T) {
	dir := t.TempDir()
	const n = 200
	lm := newLimit(filepath.Join(dir, "limit.db"), n)
	defer lm.db.Close()
	lay := newLayout(filepath.Join(dir, "layout.db"), lm, n)
	defer lay.db.Close()
	for i := range n {
		if err := lay.readOne(account(i)); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if err := lay.readOne(account(n + 1)); err == nil {
		t.Fatalf("an account never stored was found")
	}
}

// The write benchmarks write only to the write stores: the stores the
// limit model, the layout and secitemdb read from keep exactly n items,
// while their write stores grow (so the check can fail).
func TestWritesLeaveTheReadStoresAlone(t *testing.T) {
	bt := flag.Lookup("test.benchtime")
	old := bt.Value.String()
	must(bt.Value.Set("5x"))
	defer bt.Value.Set(old)
	const n = 100
	s := openStores(t.TempDir(), n)
	defer s.close()
	count := func() (reads, writes [3]int) {
		return [3]int{boltItems(s.lm.db), boltItems(s.lay.db), secitemItems(s.si)},
			[3]int{boltItems(s.lmw.db), boltItems(s.layw.db), secitemItems(s.siw)}
	}
	for _, b := range s.benches() {
		if b.Group != "read" {
			if r := testing.Benchmark(b.run); r.N == 0 {
				t.Fatalf("%s did not run", b.Name)
			}
		}
	}
	reads, writes := count()
	if reads != [3]int{n, n, n} {
		t.Errorf("read stores (limit model, layout, secitemdb) hold %v items after the writes, want %d each", reads, n)
	}
	for i, w := range writes {
		if w <= n {
			t.Errorf("write store %d holds %d items after the writes: nothing was written to it", i, w)
		}
	}
}

func boltItems(db *bbolt.DB) (n int) {
	must(db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte("items")).Stats().KeyN
		return nil
	}))
	return n
}

func secitemItems(s *secitemStore) (n int) {
	st, err := s.db.Stats()
	must(err)
	for _, byClass := range st.Items {
		for _, c := range byClass {
			n += c
		}
	}
	return n
}

func (s *stores) close() {
	for _, db := range []*bbolt.DB{s.lm.db, s.lmw.db, s.lay.db, s.layw.db} {
		db.Close()
	}
	s.si.db.Close()
	s.siw.db.Close()
	s.sq.db.Close()
}
