package store

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/internal/fuzzcorpus"
	"github.com/secitemdb/secitemdb/schema"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the fuzz seed corpora")

// FuzzDecodeFields: the sealed-blob plaintext decoder never panics, fails
// only with ErrCorrupt, and a plaintext it accepts re-encodes to the
// identical bytes.
func FuzzDecodeFields(f *testing.F) {
	if *writeCorpus {
		a, s := item("alice", "secret")
		c := schema.Key
		k := schema.Fields{}.Set(c.Attr("sdat"), schema.Date(time.Unix(5, 6))).Set(c.Attr("bsiz"), schema.Number(-1))
		fuzzcorpus.Write(".", "FuzzDecodeFields",
			[]any{byte(0), encodeFields(nil, a)}, []any{byte(0), encodeFields(nil, s)},
			[]any{byte(3), encodeFields(nil, k)}, []any{byte(1), encodeFields(nil, nil)}, []any{byte(2), []byte{4, 'x', 'x', 'x', 'x'}})
	}
	fuzzcorpus.Require(f, "FuzzDecodeFields")
	f.Fuzz(func(t *testing.T, class byte, b []byte) {
		c := schema.Classes()[int(class)%4]
		fs, err := decodeFields(c, b)
		if err != nil {
			if err != ErrCorrupt {
				t.Fatalf("decode failed with %v, not ErrCorrupt", err)
			}
			return
		}
		if again := encodeFields(nil, fs); !bytes.Equal(again, b) {
			t.Fatalf("round trip differs:\n in %x\nout %x", b, again)
		}
	})
}

// FuzzParseRecord: a stored record's header parser never panics, fails
// only with ErrCorrupt, and its views stay inside the record.
func FuzzParseRecord(f *testing.F) {
	if *writeCorpus {
		path := f.TempDir() + "/s.db"
		db, err := Open(path, Options{Device: testDevice()})
		if err != nil {
			f.Fatal(err)
		}
		a, s := item("alice", "secret")
		var rec []byte
		db.Update(func(tx *Tx) error {
			r, _, err := tx.Insert(schema.GenericPassword, a, s)
			if err == nil {
				rec = bytes.Clone(r.raw)
			}
			return err
		})
		db.Close()
		fuzzcorpus.Write(".", "FuzzParseRecord", []any{rec}, []any{rec[:40]}, []any{[]byte{1}})
	}
	fuzzcorpus.Require(f, "FuzzParseRecord")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(schema.GenericPassword, 1, b)
		if err != nil {
			if err != ErrCorrupt {
				t.Fatalf("parse failed with %v, not ErrCorrupt", err)
			}
			return
		}
		_ = r.header()
		_ = r.wrapped()
		_ = r.sealedAttrs()
		_ = r.sealedSecret()
		_ = r.postedTags()
		_ = r.attrTags()
		_ = r.PersistentRef()
	})
}
