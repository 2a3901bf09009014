package main

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

// extras are the figures that are not per-operation timings of the main
// tables.
type extras struct {
	FileSize        int64   `json:"fileSize"`
	RecordBytes     int64   `json:"recordBytes"`
	UnlockMs        float64 `json:"unlockMs"`
	KDF             string  `json:"kdf"`
	IndexedAllNs    float64 `json:"indexedAllNs"`    // m_LimitAll, 100 matches by an indexed attribute
	IndexedAllBytes int64   `json:"indexedAllBytes"` // allocated per query
	ScanAllNs       float64 `json:"scanAllNs"`       // m_LimitAll, 100 matches by an attribute without postings
	ScanAllBytes    int64   `json:"scanAllBytes"`
	ResultBytes     int64   `json:"resultBytes"` // the 100 results' attributes as returned

	// Durable Adds one by one, long enough to cross several merges of
	// the posting log: their mean (the merges' cost spread over every
	// Add), median, 99.9th percentile and slowest.
	SeqAdds     int     `json:"seqAdds"`
	SeqMeanUs   float64 `json:"seqMeanUs"`
	SeqMedianUs float64 `json:"seqMedianUs"`
	SeqP999Us   float64 `json:"seqP999Us"`
	SeqMaxUs    float64 `json:"seqMaxUs"`

	// Reads of every item once in a random order right after loading (no
	// read has filled the lookup cache yet), then again in another random
	// order: the mean of each pass.
	FirstReadNs  float64 `json:"firstReadNs"`
	SecondReadNs float64 `json:"secondReadNs"`
}

// measureFirstReads reads every one of the n items twice, each pass in a
// random order, and records each pass's mean.
func measureFirstReads(e *extras, s *secitemStore) {
	q := secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "bench", secitem.ReturnData: true}
	pass := func() float64 {
		order := mrand.Perm(s.n)
		t := time.Now()
		for _, i := range order {
			q[secitem.AttrAccount] = account(i)
			_, err := s.db.CopyMatching(q)
			must(err)
		}
		return float64(time.Since(t).Nanoseconds()) / float64(s.n)
	}
	e.FirstReadNs = pass()
	e.SecondReadNs = pass()
}

// measureSequential adds n items one by one, each durable, and records
// the distribution of their times.
func measureSequential(e *extras, db *secitem.DB, n int) {
	secret := make([]byte, secretSize)
	us := make([]float64, 0, n)
	var sum float64
	for i := 0; i < n; i++ {
		t := time.Now()
		_, err := db.Add(genp("bench-seq", fmt.Sprint(i), secret))
		must(err)
		d := float64(time.Since(t).Nanoseconds()) / 1000
		us = append(us, d)
		sum += d
	}
	sort.Float64s(us)
	e.SeqAdds, e.SeqMeanUs = n, sum/float64(n)
	e.SeqMedianUs, e.SeqP999Us, e.SeqMaxUs = us[n/2], us[n*999/1000], us[n-1]
}

func measureExtras(dir string, n int) extras {
	var e extras
	path := filepath.Join(dir, "extras.keychain")
	fmt.Fprintf(os.Stderr, "bench: extras on %d items...\n", n)
	s := openSecitem(path, n)
	db := s.db
	fmt.Fprintf(os.Stderr, "bench: every item read twice...\n")
	measureFirstReads(&e, s)
	for i := 0; i < 100; i++ {
		_, err := db.Add(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "needles",
			secitem.AttrAccount: fmt.Sprint(i), secitem.AttrLabel: "needle", secitem.AttrGeneric: "needle"})
		must(err)
	}
	st, err := db.Stats()
	must(err)
	e.FileSize, e.RecordBytes = st.FileSize, st.RecordBytes

	query := func(code string) func(b *testing.B) {
		return func(b *testing.B) {
			q := secitem.Dict{secitem.Class: secitem.ClassGenericPassword, code: "needle", secitem.MatchLimit: secitem.MatchLimitAll, secitem.ReturnAttributes: true}
			for i := 0; i < b.N; i++ {
				r, err := db.CopyMatching(q)
				if err != nil || len(r.([]any)) != 100 {
					b.Fatalf("%v", err)
				}
			}
		}
	}
	var idx, scan []float64
	for r := 0; r < 3; r++ {
		ri := testing.Benchmark(query(secitem.AttrLabel))
		rs := testing.Benchmark(query(secitem.AttrGeneric))
		idx, scan = append(idx, float64(ri.NsPerOp())), append(scan, float64(rs.NsPerOp()))
		e.IndexedAllBytes, e.ScanAllBytes = ri.AllocedBytesPerOp(), rs.AllocedBytesPerOp()
	}
	e.IndexedAllNs, e.ScanAllNs = median(idx), median(scan)
	r, _ := db.CopyMatching(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrLabel: "needle", secitem.MatchLimit: secitem.MatchLimitAll, secitem.ReturnAttributes: true})
	for _, d := range r.([]any) {
		for _, v := range d.(secitem.Dict) {
			switch x := v.(type) {
			case string:
				e.ResultBytes += int64(len(x))
			case []byte:
				e.ResultBytes += int64(len(x))
			default:
				e.ResultBytes += 8
			}
		}
	}
	fmt.Fprintf(os.Stderr, "bench: 20,000 durable Adds one by one...\n")
	measureSequential(&e, db, 20_000)
	db.Close()

	// Unlock with the default, calibrated passcode cost.
	up := filepath.Join(dir, "unlock.keychain")
	udb, err := secitem.Open(up, &secitem.Options{Device: protect.NewStaticDevice(bytes.Repeat([]byte{2}, 32))})
	must(err)
	must(udb.SetPasscode(nil, []byte("123456")))
	var times []float64
	for i := 0; i < 5; i++ {
		udb.Lock()
		t := time.Now()
		must(udb.Unlock([]byte("123456")))
		times = append(times, float64(time.Since(t).Microseconds())/1000)
	}
	e.UnlockMs = median(times)
	c := protect.DefaultKDFCost()
	e.KDF = fmt.Sprintf("argon2id t=%d m=%d MiB p=%d", c.Time, c.MemoryKiB>>10, c.Threads)
	udb.Close()
	return e
}

// scalePoint is a read latency at one store size.
type scalePoint struct {
	Items   int     `json:"items"`
	Secitem float64 `json:"secitemNs"`
	Limit   float64 `json:"limitNs"`
}

// measureScaling reads by primary key from stores of 1k to 1M items,
// each read through once before it is timed.
func measureScaling(dir string) []scalePoint {
	var out []scalePoint
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		fmt.Fprintf(os.Stderr, "bench: scaling, loading %d items...\n", n)
		t0 := time.Now()
		s := openSecitem(filepath.Join(dir, fmt.Sprintf("scale-%d.keychain", n)), n)
		lm := newLimit(filepath.Join(dir, fmt.Sprintf("scale-%d.limit", n)), n)
		fmt.Fprintf(os.Stderr, "bench: loaded in %v\n", time.Since(t0).Round(time.Second))
		// Both stores are read through once first: a long-running
		// service's reads meet a filled lookup cache (the 100k rounds
		// above fill theirs as they go), and the limit model's file gets
		// the same pass through the page cache.
		s.warm()
		lm.warm()
		var a, b []float64
		for r := 0; r < 3; r++ {
			a = append(a, float64(testing.Benchmark(s.read).NsPerOp()))
			b = append(b, float64(testing.Benchmark(lm.read).NsPerOp()))
		}
		out = append(out, scalePoint{Items: n, Secitem: median(a), Limit: median(b)})
		s.db.Close()
		lm.db.Close()
		os.Remove(filepath.Join(dir, fmt.Sprintf("scale-%d.keychain", n)))
		os.Remove(filepath.Join(dir, fmt.Sprintf("scale-%d.limit", n)))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Items < out[j].Items })
	return out
}
