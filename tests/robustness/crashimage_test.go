package robustness

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/secitemdb/secitemdb/secitem"
)

const (
	sector   = 512
	pageSize = 4096 // bbolt's page size here (the OS page size)
)

// FI-3: power loss, simulated. For each transaction, S0 is the file before
// it and S1 after it. A crash image mixes them sector by sector the way a
// disk may have persisted an interrupted commit: any subset of the data
// sectors from S1, and the meta page from S1 only once every data sector
// is (bbolt syncs data before it writes the meta page); or every data
// sector from S1 and the meta page torn after k sectors. Every image must
// open, check clean and hold exactly S0's or S1's items.
func TestCrashImages(t *testing.T) {
	txs := runs(200, 5_000)
	perTx := 16
	if soak {
		perTx = 64
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "img.keychain")
	rng := mrand.New(mrand.NewPCG(11, 12))
	db := openStore(t, path)
	state := map[string]string{}
	var images, sawS0, sawS1 int
	for i := 0; i < txs; i++ {
		s0, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		before := describe(state)
		key := fmt.Sprintf("k%d", rng.IntN(40))
		v := randomValue(rng)
		switch _, exists := state[key]; {
		case !exists:
			d := genp(key)
			d[secitem.ValueData] = v
			if _, err := db.Add(d); err != nil {
				t.Fatal(err)
			}
			state[key] = hashOf(v)
		case rng.IntN(3) == 0:
			if err := db.Delete(genp(key)); err != nil {
				t.Fatal(err)
			}
			delete(state, key)
		default:
			if err := db.Update(genp(key), secitem.Dict{secitem.ValueData: v}); err != nil {
				t.Fatal(err)
			}
			state[key] = hashOf(v)
		}
		after := describe(state)
		s1, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < perTx; j++ {
			img := crashImage(rng, s0, s1, j, perTx)
			p := filepath.Join(dir, "image.keychain")
			if err := os.WriteFile(p, img, 0o600); err != nil {
				t.Fatal(err)
			}
			got := openImage(t, p)
			switch got {
			case before:
				sawS0++
			case after:
				sawS1++
			default:
				t.Fatalf("tx %d image %d holds neither the state before nor after the transaction:\n got %s\n S0 %s\n S1 %s", i, j, got, before, after)
			}
			images++
		}
	}
	db.Close()
	t.Logf("FI-3: %d transactions, %d crash images (torn meta pages included): every one opened and checked clean; %d held the state before, %d after", txs, images, sawS0, sawS1)
	if sawS0 == 0 || sawS1 == 0 {
		t.Error("the images never produced both outcomes")
	}
}

// crashImage builds image j of n from s0 and s1. The last quarter of the
// images tear the meta page; the rest persist a random subset of data
// sectors.
func crashImage(rng *mrand.Rand, s0, s1 []byte, j, n int) []byte {
	img := make([]byte, len(s1))
	old := func(off int) byte {
		if off < len(s0) {
			return s0[off]
		}
		return 0
	}
	for i := range img {
		img[i] = old(i)
	}
	copySector := func(off int) {
		copy(img[off:min(off+sector, len(img))], s1[off:min(off+sector, len(s1))])
	}
	metaEnd := 2 * pageSize
	if j >= n*3/4 {
		// Every data sector from S1; the meta page that changed is torn
		// after k of its 8 sectors.
		for off := metaEnd; off < len(img); off += sector {
			copySector(off)
		}
		copy(img[:metaEnd], s0[:metaEnd])
		k := 1 + rng.IntN(7)
		for page := 0; page < 2; page++ {
			start := page * pageSize
			if string(s0[start:start+pageSize]) != string(s1[start:start+pageSize]) {
				for s := 0; s < k; s++ {
					copySector(start + s*sector)
				}
			}
		}
		return img
	}
	p := rng.Float64()
	all := true
	for off := metaEnd; off < len(img); off += sector {
		if rng.Float64() < p {
			copySector(off)
		} else if !sameSector(img, s1, off) {
			all = false
		}
	}
	if all && rng.IntN(2) == 0 {
		copy(img[:metaEnd], s1[:metaEnd])
	}
	return img
}

func sameSector(a, b []byte, off int) bool {
	return string(a[off:min(off+sector, len(a))]) == string(b[off:min(off+sector, len(b))])
}

// openImage opens a crash image, checks it clean and describes its items.
func openImage(t *testing.T, path string) string {
	t.Helper()
	db := openStore(t, path)
	defer db.Close()
	checkClean(t, db)
	state := map[string]string{}
	q := secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.MatchLimit: secitem.MatchLimitAll,
		secitem.ReturnAttributes: true, secitem.ReturnData: true}
	v, err := db.CopyMatching(q)
	if statusOf(err) == secitem.ErrItemNotFound {
		return describe(state)
	}
	if err != nil {
		t.Fatalf("reading the image: %v", err)
	}
	for _, item := range v.([]any) {
		d := item.(secitem.Dict)
		state[d[secitem.AttrAccount].(string)] = hashOf(d[secitem.ValueData].([]byte))
	}
	return describe(state)
}

func describe(state map[string]string) string {
	keys := make([]string, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s ", k, state[k])
	}
	return b.String()
}
