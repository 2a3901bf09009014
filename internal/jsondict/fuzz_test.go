package jsondict

import (
	"flag"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/secitemdb/secitemdb/internal/fuzzcorpus"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the fuzz seed corpora")

// FuzzDecode: secitemctl's JSON dictionary decoder never panics, and what
// it decodes prints and decodes back to the same values.
func FuzzDecode(f *testing.F) {
	if *writeCorpus {
		fuzzcorpus.Write(".", "FuzzDecode",
			[]any{[]byte(`{"class":"genp","v_Data":{"$data":"cHc="},"cdat":{"$date":"2026-01-02T03:04:05Z"},"port":443}`)},
			[]any{[]byte(`{"m_Issuers":[{"$data":"MAA="},"x",1,true,null],"private":{"perm":true}}`)},
			[]any{[]byte(`{"a":{"$data":"!"}}`)}, []any{[]byte(`[1]`)}, []any{[]byte(`{"a":1.5e3}`)})
	}
	fuzzcorpus.Require(f, "FuzzDecode")
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Decode(data)
		if err != nil {
			return
		}
		out, err := Marshal(d, nil)
		if err != nil {
			t.Fatalf("a decoded dictionary does not print: %v", err)
		}
		back, err := Decode(out)
		if err != nil {
			t.Fatalf("printed output does not decode: %v\n%s", err, out)
		}
		if diff := cmp.Diff(d, back); diff != "" {
			t.Fatalf("round trip changed the values:\n%s", diff)
		}
	})
}
