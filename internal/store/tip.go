package store

import (
	"bytes"
	"encoding/binary"

	"go.etcd.io/bbolt"
)

// The tip (file format 3) holds what nearly every commit changes besides
// the items themselves: the generation, the version root, the row
// sequence (the bucket's own sequence) and the version chunk of the
// newest rows ("vtail": chunk number ‖ versions ‖ MAC). Together they stay
// under a quarter of a page, so bbolt keeps the bucket inline in the root
// bucket's page, which every commit rewrites anyway. In format 2 these
// lived in meta and every chunk in vers: a durable Add rewrote meta's
// page and a leaf and a branch of vers as well, three pages of the
// eleven it wrote, each costing a commit some 13 µs (BENCHMARKS.md).
//
// A chunk lives in one place: the chunk the tip holds is not in vers.
// Adds take ever higher rows, so they change the tip's chunk; when a
// commit changes a chunk past it, the old one moves to vers (once every
// 64 rows). A change to an older row's chunk goes to vers as before.
//
// A store of format 1 or 2 opens as it is; its first commit creates the
// tip, moves the generation, version root and row sequence there, and
// makes the file format 3, which older versions refuse.
var (
	bucketTip = []byte("tip")
	keyVTail  = []byte("vtail")
)

// tipOf returns the bucket holding the per-commit values as btx sees
// them: the tip, or meta in a store older than format 3.
func tipOf(btx *bbolt.Tx) *bbolt.Bucket {
	if b := btx.Bucket(bucketTip); b != nil {
		return b
	}
	return btx.Bucket(bucketMeta)
}

// rowSequence returns the highest row ever allocated. Both sequences are
// read, so a row is never reused even if one of them was lowered.
func rowSequence(btx *bbolt.Tx) uint64 {
	n := btx.Bucket(bucketMeta).Sequence()
	if b := btx.Bucket(bucketTip); b != nil {
		n = max(n, b.Sequence())
	}
	return n
}

// writeTip returns the tip for writing, creating it in a store older than
// format 3: the generation, version root and row sequence move there
// from meta, and the format becomes 3.
func (tx *Tx) writeTip() (*bbolt.Bucket, error) {
	if tx.bTip != nil {
		return tx.bTip, nil
	}
	if b := tx.btx.Bucket(bucketTip); b != nil {
		tx.bTip = b
		return b, nil
	}
	meta := tx.btx.Bucket(bucketMeta)
	b, err := tx.btx.CreateBucket(bucketTip)
	if err != nil {
		return nil, err
	}
	for _, k := range [][]byte{keyGeneration, keyVRoot} {
		if v := meta.Get(k); v != nil {
			if err := b.Put(k, bytes.Clone(v)); err != nil {
				return nil, err
			}
			if err := meta.Delete(k); err != nil {
				return nil, err
			}
		}
	}
	if err := b.SetSequence(meta.Sequence()); err != nil {
		return nil, err
	}
	if err := meta.Put(keyFormat, []byte{FormatVersion}); err != nil {
		return nil, err
	}
	tx.bTip = b
	return b, nil
}

// tail returns the chunk number and stored value (versions ‖ MAC) of the
// tip's version chunk; ok is false when the tip holds none, or holds one
// of the wrong size (which counts as none: its rows' versions are then
// looked for in vers, and Check reports it).
func tailOf(btx *bbolt.Tx) (n uint64, v []byte, ok bool) {
	b := btx.Bucket(bucketTip)
	if b == nil {
		return 0, nil, false
	}
	raw := b.Get(keyVTail)
	if len(raw) != 8+chunkSize || !fitsFile(btx, raw) {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(raw), raw[8:], true
}
