package store

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// tagValues are values of every kind and of lengths on both sides of
// maxCachedValue, more of them than the cache has slots.
func tagValues() []schema.Value {
	var vs []schema.Value
	for i := range 1500 {
		vs = append(vs, schema.String(fmt.Sprintf("group-%d", i)))
	}
	for n := range maxCachedValue + 4 {
		vs = append(vs, schema.String(strings.Repeat("g", n)), schema.Data([]byte(strings.Repeat("d", n))))
	}
	for i := range 600 {
		vs = append(vs, schema.Number(int64(i)))
	}
	return append(vs, schema.Data(nil), schema.Date(schema.ReferenceDate))
}

// wantTag computes the tag Tag must return, without the cache.
func wantTag(db *DB, c *schema.Class, a *schema.Attr, v schema.Value) protect.Tag {
	return db.ix.Tag(c.Code, a.Code, v.Canonical(nil))
}

// TestTagCache checks that the tag cache answers what the index key
// computes, for cached and uncached attributes, when values share a slot
// and push each other out, and after a wipe changes the index key.
func TestTagCache(t *testing.T) {
	db, _ := openTest(t)
	vs := tagValues()
	check := func(when string) {
		t.Helper()
		for _, c := range storedClasses {
			for _, code := range []string{"agrp", "sync", "musr", "pdmn", "labl"} {
				a := c.Attr(code)
				if a == nil {
					continue
				}
				for round := range 2 { // the second round reads what the first cached
					for _, v := range vs {
						if got := db.Tag(c, schema.Field{Attr: a, Value: v}); got != wantTag(db, c, a, v) {
							t.Fatalf("%s, round %d: the tag of %s.%s = %v differs from the index key's", when, round, c.Code, code, v)
						}
					}
				}
			}
		}
	}
	check("before the wipe")
	a := schema.GenericPassword.Attr("agrp")
	v := schema.String("group-1")
	old := db.Tag(schema.GenericPassword, schema.Field{Attr: a, Value: v})
	if err := db.Wipe(); err != nil {
		t.Fatal(err)
	}
	if db.Tag(schema.GenericPassword, schema.Field{Attr: a, Value: v}) == old {
		t.Fatal("after a wipe the tag cache still answers under the old index key")
	}
	check("after the wipe")
}

// TestTagCacheConcurrent has goroutines read and fill the cache at once,
// on values that share slots; run with -race.
func TestTagCacheConcurrent(t *testing.T) {
	db, _ := openTest(t)
	vs := tagValues()
	c := schema.InternetPassword
	a := c.Attr("agrp")
	want := make([]protect.Tag, len(vs))
	for i, v := range vs {
		want[i] = wantTag(db, c, a, v)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 4 * len(vs) {
				j := (i*(g+1) + g) % len(vs)
				if db.Tag(c, schema.Field{Attr: a, Value: vs[j]}) != want[j] {
					errs <- fmt.Sprintf("goroutine %d: a wrong tag for value %d", g, j)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Values that share a set all stay cached, up to the set's ways: a second
// round over them is answered without storing anything.
func TestTagCacheSharedSet(t *testing.T) {
	db, _ := openTest(t)
	c := schema.GenericPassword
	a := c.Attr("agrp")
	// tagWays values of the same set, found by trying names.
	var vs []schema.Value
	want := ^uint64(0)
	for i := 0; len(vs) < tagWays; i++ {
		v := schema.String(fmt.Sprintf("team.%d", i))
		var buf [tagKeyWords * 8]byte
		copy(buf[:4], c.Code)
		copy(buf[4:8], a.Code)
		set := setOf(&buf, len(v.Canonical(buf[:8])))
		if want == ^uint64(0) {
			want = set
		}
		if set == want {
			vs = append(vs, v)
		}
	}
	for _, v := range vs {
		db.Tag(c, schema.Field{Attr: a, Value: v})
	}
	set := &db.tags.Load().sets[want]
	var before [tagWays]*tagEntry
	for w := range set {
		before[w] = set[w].Load()
	}
	for _, v := range vs {
		if db.Tag(c, schema.Field{Attr: a, Value: v}) != wantTag(db, c, a, v) {
			t.Fatal("a wrong tag from a shared set")
		}
	}
	for w := range set {
		if set[w].Load() != before[w] {
			t.Fatalf("way %d of a set holding %d values was replaced on a second round", w, tagWays)
		}
	}
}

// TestSearchTags checks the word-wise binary search against a linear scan,
// and the word-wise order against bytes.Compare, for sorted runs of random tags (many sharing their
// first eight bytes, so the second word decides) and for tags absent,
// smaller or larger than every element.
func TestSearchTags(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for n := 0; n < 40; n++ {
		run := make([]protect.Tag, n)
		for i := range run {
			for j := range run[i] {
				run[i][j] = byte(rng.IntN(3)) // few values: long shared prefixes
			}
		}
		slices.SortFunc(run, func(a, b protect.Tag) int { return bytes.Compare(a[:], b[:]) })
		run = slices.Compact(run)
		var flat []byte
		for _, r := range run {
			flat = append(flat, r[:]...)
		}
		for range 200 {
			var q protect.Tag
			for j := range q {
				q[j] = byte(rng.IntN(3))
			}
			if rng.IntN(4) == 0 {
				q[rng.IntN(len(q))] = 0xff // larger than anything in the run
			}
			for _, r := range run {
				if got, want := compareTags(q, r), bytes.Compare(q[:], r[:]); got != want {
					t.Fatalf("compareTags(%x, %x) = %d, want %d", q, r, got, want)
				}
			}
			want := slices.ContainsFunc(run, func(r protect.Tag) bool { return r == q })
			if got := searchTags(flat, q); got != want {
				t.Fatalf("run of %d: searchTags(%x) = %v, want %v", len(run), q, got, want)
			}
		}
		for _, r := range run {
			if !searchTags(flat, r) {
				t.Fatalf("run of %d: member %x not found", len(run), r)
			}
		}
	}
}

// TestComparePostingKeys checks the word-wise order of index keys against
// bytes.Compare, with keys that share long prefixes (so every word gets to
// decide) and the extremes.
func TestComparePostingKeys(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	key := func() postingKey {
		var k postingKey
		for j := range k {
			switch rng.IntN(4) {
			case 0:
				k[j] = 0xff
			default:
				k[j] = byte(rng.IntN(2))
			}
		}
		return k
	}
	for range 20000 {
		a, b := key(), key()
		if rng.IntN(3) == 0 {
			b = a
			b[rng.IntN(len(b))] ^= 1
		}
		if got, want := comparePostingKeys(a, b), bytes.Compare(a[:], b[:]); got != want {
			t.Fatalf("comparePostingKeys(%x, %x) = %d, want %d", a, b, got, want)
		}
	}
}

// TestItemTags checks that itemTags, which computes each tag once, gives
// what computing the three lists apart gives: for a generic password, one
// missing some primary-key attributes, and a key and a certificate that
// carry the identity join attributes (klbl, pkhh).
func TestItemTags(t *testing.T) {
	db, _ := openTestWith(t, Options{})
	f, _ := item("alice", "s")
	sparse := schema.Fields{}.
		Set(schema.GenericPassword.Attr("acct"), schema.String("bob")).
		Set(schema.GenericPassword.Attr("pdmn"), schema.String("ak"))
	key := schema.Fields{}.
		Set(schema.Key.Attr("klbl"), schema.Data([]byte("label"))).
		Set(schema.Key.Attr("atag"), schema.Data([]byte("tag"))).
		Set(schema.Key.Attr("pdmn"), schema.String("ak"))
	cert := schema.Fields{}.
		Set(schema.Certificate.Attr("pkhh"), schema.Data([]byte("label"))).
		Set(schema.Certificate.Attr("issr"), schema.Data([]byte("issuer"))).
		Set(schema.Certificate.Attr("pdmn"), schema.String("ak"))
	for _, tc := range []struct {
		c      *schema.Class
		fields schema.Fields
	}{{schema.GenericPassword, f}, {schema.GenericPassword, sparse}, {schema.Key, key}, {schema.Certificate, cert}} {
		c := tc.c
		lookup := db.lookupTag(c, tc.fields)
		wantPosted := []protect.Tag{lookup}
		var wantTags []protect.Tag
		for _, f := range tc.fields {
			wantTags = append(wantTags, db.Tag(c, f))
			if f.Attr.Has(schema.Indexed) {
				wantPosted = append(wantPosted, db.Tag(c, f))
			}
			if f.Attr.Has(schema.JoinKey) {
				wantPosted = append(wantPosted, db.JoinTag(f.Value.Bytes()))
			}
		}
		for _, a := range c.PrimaryKey() {
			if _, ok := tc.fields.Get(a.Code); !ok {
				def, _ := a.Default()
				wantTags = append(wantTags, db.Tag(c, schema.Field{Attr: a, Value: def}))
			}
		}
		posted, tags, shared := db.itemTags(c, lookup, tc.fields)
		if !slices.Equal(posted, dedupe(wantPosted)) {
			t.Errorf("%s: postings differ", c.Code)
		}
		if !slices.Equal(tags, dedupe(wantTags)) {
			t.Errorf("%s: attribute tags differ", c.Code)
		}
		wantShared := db.sharedKeyTags(c, tc.fields)
		if !slices.Equal(dedupe(slices.Clone(shared)), dedupe(wantShared)) {
			t.Errorf("%s: shared primary-key tags differ", c.Code)
		}
		if len(shared) != len(wantShared) {
			t.Errorf("%s: %d shared tags, want %d", c.Code, len(shared), len(wantShared))
		}
	}
}
