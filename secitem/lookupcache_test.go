package secitem_test

import (
	"bytes"
	"fmt"
	"testing"

	. "github.com/secitemdb/secitemdb/secitem"
)

// Options.LookupCacheEntries reaches the store: the default table, a
// limited one and none at all answer the same, Stats reports the size of
// each, and only reads by primary key fill it.
func TestLookupCacheOption(t *testing.T) {
	for _, tc := range []struct {
		option, entries int
	}{{0, 1024}, {64, 64}, {-1, 0}} {
		t.Run(fmt.Sprint(tc.option), func(t *testing.T) {
			db := openTest(t, &Options{LookupCacheEntries: tc.option})
			const n = 100
			for i := range n {
				mustAdd(t, db, Dict{Class: ClassGenericPassword, AttrService: "s", AttrAccount: fmt.Sprintf("a%d", i), ValueData: []byte{byte(i)}})
			}
			st, err := db.Stats()
			wantStatus(t, err, 0)
			if st.LookupCacheEntries != tc.entries || st.LookupCacheFilled != 0 {
				t.Fatalf("after the adds: %d entries (want %d), %d filled (want 0)", st.LookupCacheEntries, tc.entries, st.LookupCacheFilled)
			}
			if want := int64(44 * tc.entries); st.LookupCacheBytes != want {
				t.Fatalf("%d bytes, want %d", st.LookupCacheBytes, want)
			}
			for range 2 {
				for i := range n {
					got, err := db.CopyMatching(Dict{Class: ClassGenericPassword, AttrService: "s", AttrAccount: fmt.Sprintf("a%d", i), ReturnData: true})
					wantStatus(t, err, 0)
					if b, _ := got.([]byte); !bytes.Equal(b, []byte{byte(i)}) {
						t.Fatalf("item %d: wrong data", i)
					}
				}
			}
			st, err = db.Stats()
			wantStatus(t, err, 0)
			// Entries are placed by keyed hashes: a full set evicts, so the
			// bounds leave room for uneven sets.
			switch {
			case tc.entries == 0 && st.LookupCacheFilled != 0,
				tc.entries > 0 && st.LookupCacheFilled < min(tc.entries/2, n*9/10):
				t.Fatalf("after the reads: %d of %d entries filled", st.LookupCacheFilled, tc.entries)
			}
		})
	}
}
