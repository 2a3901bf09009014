package store

import (
	"bytes"
	"encoding/binary"

	"go.etcd.io/bbolt"
)

// The tip (file format 3) holds what nearly every commit changes besides
// the items themselves: the generation, the version root, the row
// sequence (the bucket's own sequence), the version chunk of the newest
// rows ("vtail": chunk number ‖ versions ‖ MAC) and the tail of the
// posting log ("ltail": the operations of the last few commits, which the
// log's bucket has not taken yet). Together they stay under a quarter of
// a page, so bbolt keeps the bucket inline in the root bucket's page,
// which every commit rewrites anyway. In format 2 these lived in meta,
// vers and plog: a durable Add rewrote meta's page, a leaf and a branch
// of vers and a leaf and a branch of plog as well, five pages of the
// eleven it wrote, each costing a commit some 13 µs (BENCHMARKS.md).
//
// A chunk lives in one place: the chunk the tip holds is not in vers.
// Adds take ever higher rows, so they change the tip's chunk; when a
// commit changes a chunk past it, the old one moves to vers (once every
// 64 rows). A change to an older row's chunk goes to vers as before.
// When the tip holds no chunk (a new or upgraded store, after a wipe),
// the highest chunk the commit changes goes there, whatever its age.
//
// The log's tail is the value the log's bucket takes next: Open replays
// it after the bucket's values, as sequence (bucket sequence + 1). A
// commit whose operations would make it longer than maxLogTail appends
// tail and operations to the bucket as one value and empties it (about
// one single-item Add in four), and a merge first does the same, so the
// merge marks, which are bucket sequences, cover what it merged.
//
// A store of format 1 or 2 opens as it is; its first commit creates the
// tip, moves the generation, version root and row sequence there, and
// makes the file format 3, which older versions refuse.
var (
	bucketTip  = []byte("tip")
	keyVTail   = []byte("vtail")
	keyLogTail = []byte("ltail")
)

// maxLogTail bounds the log's tail in the tip: 11 operations, about three
// single-item Adds. With the generation, root and chunk the tip then stays
// under bbolt's inline limit (a quarter of a 4 KiB page). Tests set it to
// 0 to put every commit's operations in the log's bucket.
var maxLogTail = 11 * logOpSize

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
	if b := tx.tip(); b != nil {
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

// tip returns the tip bucket, nil in a store of an older format that no
// commit has written yet; looked up once per transaction.
func (tx *Tx) tip() *bbolt.Bucket {
	if tx.bTip == nil {
		tx.bTip = tx.btx.Bucket(bucketTip)
	}
	return tx.bTip
}

// tailOf returns the chunk number and stored value (versions ‖ MAC) of the
// tip's version chunk; ok is false when the tip holds none, or holds one
// of the wrong size (which counts as none: its rows' versions are then
// looked for in vers, and Check reports it).
func tailOf(btx *bbolt.Tx) (n uint64, v []byte, ok bool) {
	m := mapOf(btx)
	return tailIn(btx.Bucket(bucketTip), &m)
}

// tailIn is tailOf for the tip bucket (nil when there is none) of a
// transaction whose mapping is at hand (mapOf allocates).
func tailIn(tip *bbolt.Bucket, m *mapping) (n uint64, v []byte, ok bool) {
	if tip == nil {
		return 0, nil, false
	}
	raw := tip.Get(keyVTail)
	if len(raw) != 8+chunkSize || !m.fits(raw) {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(raw), raw[8:], true
}
