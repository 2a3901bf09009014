package secitem_test

import (
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"

	. "github.com/secitemdb/secitemdb/secitem"
)

// benchStore opens a store holding n generic passwords with 256-byte
// secrets (service "bench", accounts "user-<i>").
func benchStore(b *testing.B, n int) *DB { return benchStoreWith(b, n, nil) }

func benchStoreWith(b *testing.B, n int, opts *Options) *DB {
	db := openTest(b, opts)
	secret := make([]byte, 256)
	for start := 0; start < n; start += 1000 {
		var batch []Dict
		for i := start; i < min(start+1000, n); i++ {
			batch = append(batch, genp(AttrService, "bench", AttrAccount, fmt.Sprintf("user-%d", i), ValueData, secret))
		}
		if err := db.AddManyForTest(batch); err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkCopyMatchingByPrimaryKey reads one item's secret by service and
// account (the whole primary key a caller gives), as in
// performance.md's read model; compare with internal/store's
// BenchmarkLimitRead from the same run. Like it, each read asks for a
// random item among all n, building its key ("keys=all"); "keys=1024"
// cycles through 1,024 of them, the pattern of the figures in
// BENCHMARKS.md before Run 8; "cache=off" is keys=all on a store opened
// with the lookup cache off.
func BenchmarkCopyMatchingByPrimaryKey(b *testing.B) {
	for _, n := range []int{10_000} {
		db := benchStore(b, n)
		off := benchStoreWith(b, n, &Options{LookupCacheEntries: -1})
		for _, tc := range []struct {
			name string
			db   *DB
			keys int
		}{{"keys=all", db, n}, {"keys=1024", db, 1024}, {"keys=all/cache=off", off, n}} {
			db, keys, name := tc.db, tc.keys, fmt.Sprintf("items=%d/%s", n, tc.name)
			b.Run(name, func(b *testing.B) {
				var pick []string // the cycled keys
				if keys != n {
					for range keys {
						pick = append(pick, fmt.Sprintf("user-%d", mrand.IntN(n)))
					}
				}
				q := genp(AttrService, "bench", ReturnData, true)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if keys == n {
						// Built, as the limit model builds its key: a
						// table of n names can cost misses the model's
						// read does not pay (BENCHMARKS.md, Run 13).
						q[AttrAccount] = "user-" + strconv.Itoa(mrand.IntN(n))
					} else {
						q[AttrAccount] = pick[i%keys]
					}
					if _, err := db.CopyMatching(q); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAddDurable adds one item per call, each its own fsync'd
// transaction, to a store of 10k items; compare with internal/store's
// BenchmarkLimitDurablePut.
func BenchmarkAddDurable(b *testing.B) {
	db := benchStore(b, 10_000)
	secret := make([]byte, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.Add(genp(AttrService, "bench-add", AttrAccount, fmt.Sprintf("new-%d", i), ValueData, secret)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnlock measures one Lock + Unlock with the default passcode cost
// (argon2id, 64 MiB, calibrated on this machine): the price of every
// passcode check, for the owner and for an attacker alike.
func BenchmarkUnlock(b *testing.B) {
	db := openTest(b, nil)
	if err := db.SetPasscode(nil, []byte("123456")); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db.Lock()
		if err := db.Unlock([]byte("123456")); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopyMatchingWithPasscode is BenchmarkCopyMatchingByPrimaryKey
// on a store with a passcode, unlocked: the keybag adds nothing per
// operation once the class keys are in memory.
func BenchmarkCopyMatchingWithPasscode(b *testing.B) {
	db := benchStore(b, 10_000)
	if err := db.SetPasscode(nil, []byte("123456")); err != nil {
		b.Fatal(err)
	}
	queries := make([]Dict, 1024)
	for i := range queries {
		queries[i] = genp(AttrService, "bench", AttrAccount, fmt.Sprintf("user-%d", mrand.IntN(10_000)), ReturnData, true)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.CopyMatching(queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddConcurrent64 adds from 64 goroutines at once, each Add
// durable; concurrent Adds share commits (group commit). Compare with
// internal/store's BenchmarkLimitBatch64 (bbolt's own Batch).
func BenchmarkAddConcurrent64(b *testing.B) {
	db := benchStore(b, 10_000)
	secret := make([]byte, 256)
	var next atomic.Int64
	b.SetParallelism(32) // 32 × GOMAXPROCS(2) = 64 goroutines
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			if _, err := db.Add(genp(AttrService, "bench-concurrent", AttrAccount, fmt.Sprint(i), ValueData, secret)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
