package etcdsync

import (
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/secitem"
)

// benchPair is two stores of one group, each with its engine at the
// default interval (etcd's watch wakes the reader; Poke the writer).
func benchPair(b *testing.B) (a, c *member) {
	et := startEtcd(b)
	dir := b.TempDir()
	mk := func(name string) *member {
		db := openStore(b, filepath.Join(dir, name+".keychain"))
		cli := et.client(b)
		if err := Join(b.Context(), db, cli, "bench", []byte("group secret")); err != nil {
			b.Fatal(err)
		}
		e, err := Start(db, cli, "bench", Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close(); db.Close() })
		return &member{name: name, db: db, e: e}
	}
	return mk("a"), mk("b")
}

func waitFor(b *testing.B, db *secitem.DB, acct string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := db.CopyMatching(syncItem(acct)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never arrived", acct)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// BenchmarkPropagation: one Add on A until it is readable on B (A's
// durable commit, its push, etcd's commit, the watch, B's pull and
// durable commit). Reports the median and the 90th percentile.
func BenchmarkPropagation(b *testing.B) {
	a, c := benchPair(b)
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		acct := fmt.Sprintf("p-%d", i)
		start := time.Now()
		if _, err := a.db.Add(syncItem(acct, secitem.ValueData, []byte("v"))); err != nil {
			b.Fatal(err)
		}
		a.e.Poke()
		waitFor(b, c.db, acct)
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds()), "p90-µs")
}

// BenchmarkPropagationThroughput: 200 Adds on A, then until all are on B;
// reports items per second end to end.
func BenchmarkPropagationThroughput(b *testing.B) {
	a, c := benchPair(b)
	const n = 200
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for j := 0; j < n; j++ {
			if _, err := a.db.Add(syncItem(fmt.Sprintf("t-%d-%d", i, j), secitem.ValueData, []byte("v"))); err != nil {
				b.Fatal(err)
			}
		}
		a.e.Poke()
		waitFor(b, c.db, fmt.Sprintf("t-%d-%d", i, n-1))
		for j := 0; j < n; j++ {
			waitFor(b, c.db, fmt.Sprintf("t-%d-%d", i, j))
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "items/s")
	}
}
