package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// Problem is one thing Check found wrong.
type Problem struct {
	Class  string // "genp", ... or "" for the file as a whole
	Row    uint64
	Ref    []byte // the item's persistent reference, when its header parsed
	Detail string
}

func (p Problem) String() string {
	if p.Class == "" {
		return p.Detail
	}
	if p.Ref != nil {
		return fmt.Sprintf("%s item %x: %s", p.Class, p.Ref, p.Detail)
	}
	return fmt.Sprintf("%s row %d: %s", p.Class, p.Row, p.Detail)
}

// CheckReport is the result of Check.
type CheckReport struct {
	// Items counts the items that opened and authenticated, by class and
	// protection class.
	Items map[string]map[string]int
	// Locked counts the items whose class key was unavailable, so only
	// their structure was checked.
	Locked int
	// Problems lists every damaged, stale or inconsistent item, posting,
	// version entry, and bbolt's own structural errors.
	Problems []Problem

	omitted int // problems past maxProblems
}

// maxProblems bounds a report: a badly damaged file could otherwise make
// one problem per page.
const maxProblems = 1000

func (rep *CheckReport) add(p Problem) {
	if len(rep.Problems) < maxProblems {
		rep.Problems = append(rep.Problems, p)
	} else {
		rep.omitted++
	}
}

// hexShort prints at most 32 bytes of b in hex (a damaged key may be huge).
func hexShort(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%x… (%d bytes)", b[:32], len(b))
}

// Check verifies the whole store without changing it: the page structure
// (walkTree); every record parsed, its version matched against the version
// table, its item key unwrapped and both sealed parts authenticated
// (when its class key is available); every posting the record owns
// present; no posting without its record; no version entry without its
// record; the version root.
func (db *DB) Check() (rep CheckReport, err error) {
	defer unguard(guard())
	defer recoverCorrupt(&err)
	rep.Items = map[string]map[string]int{}
	defer db.readers.leave(db.enterReader())
	err = db.bolt.View(func(btx *bbolt.Tx) error {
		problems, sound := walkTree(db.path, uint64(btx.ID()), maxProblems)
		for _, p := range problems {
			rep.add(Problem{Detail: p})
		}
		if !sound {
			// Iterating a damaged tree could loop or fault: the structural
			// problems are the report.
			return nil
		}
		if !db.rootMatches {
			rep.add(Problem{Detail: "version table: the root does not match its chunks (part of the file was rolled back)"})
		}
		tx := &Tx{db: db, btx: btx}
		owned := map[string]bool{} // posting keys owned by parsed records
		if n := db.plog.Damaged(); n > 0 {
			rep.add(Problem{Detail: fmt.Sprintf("posting log: %d values are damaged (their postings are lost until the items are rewritten)", n)})
		}
		logged := func(key []byte) bool {
			var t protect.Tag
			copy(t[:], key)
			return db.plog.holds(t, binary.BigEndian.Uint64(key[tagSize:]), tx.txid())
		}
		live := map[uint64]bool{}
		for _, c := range schema.Classes() {
			cur := btx.Bucket(classBucket(c)).Cursor()
			for k, v := cur.First(); k != nil; k, v = cur.Next() {
				if len(k) != 8 {
					rep.add(Problem{Class: c.Code, Detail: fmt.Sprintf("malformed row key %s", hexShort(k))})
					continue
				}
				row := binary.BigEndian.Uint64(k)
				live[row] = true
				if !fitsFile(btx, v) {
					rep.add(Problem{Class: c.Code, Row: row, Detail: "record size is larger than the file (damaged leaf page)"})
					continue
				}
				r, perr := parseRecord(c, row, bytes.Clone(v))
				if perr != nil {
					rep.add(Problem{Class: c.Code, Row: row, Detail: "record header does not parse"})
					continue
				}
				for i := 0; i < r.nposted; i++ {
					key := append(bytes.Clone(r.postedTags()[i*tagSize:(i+1)*tagSize]), k...)
					owned[string(key)] = true
					if btx.Bucket(bucketIndex).Get(key) == nil && !logged(key) {
						rep.add(Problem{Class: c.Code, Row: row, Ref: r.PersistentRef(), Detail: "an index posting is missing"})
					}
				}
				attrs, _, oerr := tx.Open(r, true)
				switch status.Of(oerr) {
				case status.OK:
					pdmn, _ := attrs.Get("pdmn")
					if rep.Items[c.Code] == nil {
						rep.Items[c.Code] = map[string]int{}
					}
					rep.Items[c.Code][pdmn.Str]++
				case status.InteractionNotAllowed:
					rep.Locked++
				default:
					detail := "failed authentication"
					if se, ok := oerr.(*status.Error); ok {
						detail = se.Detail
					}
					rep.add(Problem{Class: c.Code, Row: row, Ref: r.PersistentRef(), Detail: detail})
				}
			}
		}
		cur := btx.Bucket(bucketIndex).Cursor()
		for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
			if len(k) != tagSize+8 || !owned[string(k)] {
				rep.add(Problem{Detail: fmt.Sprintf("index posting %s belongs to no item", hexShort(k))})
			}
		}
		var orphans [][]byte
		db.plog.each(tx.txid(), func(t protect.Tag, row uint64) {
			if k := binary.BigEndian.AppendUint64(t[:], row); !owned[string(k)] {
				orphans = append(orphans, k)
			}
		})
		slices.SortFunc(orphans, bytes.Compare) // the table is a map: report in key order
		for _, k := range orphans {
			rep.add(Problem{Detail: fmt.Sprintf("logged posting %s belongs to no item", hexShort(k))})
		}
		checkChunk := func(chunk uint64, v []byte) {
			if db.badChunks[chunk] {
				rep.add(Problem{Detail: fmt.Sprintf("version chunk %d failed authentication", chunk)})
			}
			for slot := 0; slot < chunkRows; slot++ {
				row := chunk*chunkRows + uint64(slot)
				if binary.BigEndian.Uint64(v[slot*8:]) != 0 && !live[row] {
					rep.add(Problem{Detail: fmt.Sprintf("version entry for row %d, which holds no item", row)})
				}
			}
		}
		tailN, _, hasTail := tailOf(btx)
		eachChunk(btx, func(k, v []byte, inTip bool) {
			switch {
			case len(k) != 8 || len(v) != chunkSize:
				rep.add(Problem{Detail: fmt.Sprintf("malformed version chunk %s", hexShort(k))})
			case !inTip && hasTail && binary.BigEndian.Uint64(k) == tailN:
				rep.add(Problem{Detail: fmt.Sprintf("version chunk %d is stored twice (in vers and in the tip)", tailN)})
			default:
				checkChunk(binary.BigEndian.Uint64(k), v)
			}
		})
		if tip := btx.Bucket(bucketTip); !hasTail && tip != nil && tip.Get(keyVTail) != nil {
			rep.add(Problem{Detail: "malformed version chunk in the tip"})
		}
		return nil
	})
	if rep.omitted > 0 {
		rep.Problems = append(rep.Problems, Problem{Detail: fmt.Sprintf("and %d more problems", rep.omitted)})
	}
	return rep, mapBoltError(err)
}

// Stats describe the file and what it holds, without decrypting.
type Stats struct {
	FileSize     int64
	PageSize     int
	FreePages    int
	PendingPages int
	// Items counts items by class and, within a class, by protection
	// class (read from each record's key ID; "?" for a key the keybag no
	// longer has).
	Items map[string]map[string]int
	// RecordBytes is the total size of the stored records (headers, tags,
	// wrapped keys, sealed attributes and secrets), without bbolt's
	// overhead, the index or the version table.
	RecordBytes int64
	// LoggedPostings is the number of postings in the posting log, not
	// yet merged into the index; a commit that finds more than MergeAt
	// merges one sixteenth of the tag space (postlog.go).
	LoggedPostings, MergeAt int
	// LookupCacheEntries and LookupCacheBytes are the size of this
	// handle's lookup cache (lookups.go; 0 when it is off);
	// LookupCacheFilled counts the entries written since the table was
	// made (some may no longer be usable).
	LookupCacheEntries, LookupCacheFilled int
	LookupCacheBytes                      int64
}

// Stats returns the file's statistics.
func (db *DB) Stats() (s Stats, err error) {
	defer unguard(guard())
	defer recoverCorrupt(&err)
	s = Stats{Items: map[string]map[string]int{}}
	if fi, err := os.Stat(db.path); err == nil {
		s.FileSize = fi.Size()
	}
	bs := db.bolt.Stats()
	s.FreePages, s.PendingPages = bs.FreePageN, bs.PendingPageN
	s.PageSize = db.bolt.Info().PageSize
	db.plog.mu.RLock()
	s.LoggedPostings = db.plog.live
	db.plog.mu.RUnlock()
	s.MergeAt = mergeLimit(db.rows.Load())
	s.LookupCacheEntries, s.LookupCacheBytes, s.LookupCacheFilled = db.lookups.stats()
	err = db.bolt.View(func(btx *bbolt.Tx) error {
		for _, c := range schema.Classes() {
			m := map[string]int{}
			cur := btx.Bucket(classBucket(c)).Cursor()
			for k, v := cur.First(); k != nil; k, v = cur.Next() {
				s.RecordBytes += int64(len(v))
				prot := "?"
				if len(v) >= offKeyID+4 {
					if cls, ok := db.kb.ClassOf(binary.BigEndian.Uint32(v[offKeyID:])); ok {
						prot = cls.Code()
					}
				}
				m[prot]++
			}
			if len(m) > 0 {
				s.Items[c.Code] = m
			}
		}
		return nil
	})
	return s, mapBoltError(err)
}
