package store

// The physical-limit model of ../shared/design/performance.md, measured
// beside secitem's own benchmarks (secitem/bench_test.go) in the same run:
//
//	read:  bbolt View + Get of a random record among n, one index probe
//	       (HMAC-SHA256 of 32 bytes), one unwrap of a 32-byte item key
//	       under a cached AES-256-GCM class key, one XChaCha20-Poly1305
//	       open of a 256-byte secret
//	write: the same sealing plus one Put in one fsync'd bbolt transaction

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"

	"go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

type limitModel struct {
	db    *bbolt.DB
	class cipher.AEAD
	mac   func() []byte
	n     int
}

func newLimitModel(b *testing.B, n int) *limitModel {
	path := filepath.Join(b.TempDir(), "limit.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	var ck [32]byte
	rand.Read(ck[:])
	blk, _ := aes.NewCipher(ck[:])
	class, _ := cipher.NewGCM(blk)
	m := &limitModel{db: db, class: class, n: n}
	h := hmac.New(sha256.New, ck[:])
	m.mac = func() []byte { h.Reset(); h.Write(ck[:]); return h.Sum(nil) }
	err = db.Update(func(tx *bbolt.Tx) error {
		bk, _ := tx.CreateBucketIfNotExists([]byte("items"))
		for i := 0; i < n; i++ {
			if err := bk.Put(key(uint64(i)), m.record()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func key(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// record is a sealed record of the same shape as secitemdb's: a wrapped
// item key followed by a sealed 256-byte secret.
func (m *limitModel) record() []byte {
	var ik [32]byte
	rand.Read(ik[:])
	nonce := make([]byte, 12)
	rand.Read(nonce)
	rec := m.class.Seal(nonce, nonce, ik[:], nil)
	x, _ := chacha20poly1305.NewX(ik[:])
	xn := make([]byte, 24)
	rand.Read(xn)
	return x.Seal(append(rec, xn...), xn, make([]byte, 256), nil)
}

func (m *limitModel) read(i uint64) error {
	return m.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket([]byte("items")).Get(key(i))
		m.mac()
		var ik [32]byte
		if _, err := m.class.Open(ik[:0], v[:12], v[12:60], nil); err != nil {
			return err
		}
		x, _ := chacha20poly1305.NewX(ik[:])
		_, err := x.Open(nil, v[60:84], v[84:], nil)
		return err
	})
}

func BenchmarkLimitRead(b *testing.B) {
	for _, n := range []int{10_000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			m := newLimitModel(b, n)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.read(mrand.Uint64N(uint64(n))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLimitDurablePut(b *testing.B) {
	m := newLimitModel(b, 10_000)
	next := uint64(m.n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		next++
		err := m.db.Update(func(tx *bbolt.Tx) error {
			m.mac()
			return tx.Bucket([]byte("items")).Put(key(next), m.record())
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLimitBatch64 writes the same sealed records from 64 goroutines
// through bbolt's Batch (MaxBatchSize 64, as performance.md measured):
// the group-commit reference for secitem's BenchmarkAddConcurrent64.
func BenchmarkLimitBatch64(b *testing.B) {
	m := newLimitModel(b, 10_000)
	m.db.MaxBatchSize = 64
	var next atomic.Uint64
	next.Store(uint64(m.n))
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := next.Add(1)
			rec := m.record()
			if err := m.db.Batch(func(tx *bbolt.Tx) error {
				m.mac()
				return tx.Bucket([]byte("items")).Put(key(k), rec)
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
