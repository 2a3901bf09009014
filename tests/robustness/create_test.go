package robustness

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/secitem"
)

func childCreate(fail func(error) int) int {
	dir := os.Getenv("SECITEM_DIR")
	report("R")
	for i := 0; ; i++ {
		path := filepath.Join(dir, fmt.Sprintf("s-%d.keychain", i))
		report("B %d", i)
		db, err := secitem.Open(path, &secitem.Options{Timeout: time.Second}) // default file device
		if err != nil {
			return fail(err)
		}
		if err := db.Close(); err != nil {
			return fail(err)
		}
		report("A %d", i)
	}
}

// FI-7: kill -9 while new stores (and their device-secret files) are
// being created: every path is afterwards either no store at all, so a
// fresh Open creates one, or a complete store that opens and checks clean.
func TestKillDuringCreate(t *testing.T) {
	kills := runs(200, 5_000)
	rng := mrand.New(mrand.NewPCG(7, 8))
	root := t.TempDir()
	var complete, absent, leftovers int
	for i := 0; i < kills; i++ {
		dir := filepath.Join(root, fmt.Sprintf("run-%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		c := startChild(t, "create", "SECITEM_DIR="+dir)
		if l := <-c.lines; l != "R" {
			c.kill()
			t.Fatalf("child did not start: %s", c.stderrText())
		}
		time.Sleep(time.Duration(rng.IntN(30_000)) * time.Microsecond)
		lines := c.kill()
		last := -1
		for _, l := range lines {
			var n int
			if _, err := fmt.Sscanf(l, "B %d", &n); err == nil {
				last = n
			}
		}
		for n := 0; n <= last; n++ {
			path := filepath.Join(dir, fmt.Sprintf("s-%d.keychain", n))
			_, statErr := os.Stat(path)
			db, err := secitem.Open(path, &secitem.Options{Timeout: time.Second})
			if err != nil {
				t.Fatalf("kill %d: store %d cannot be opened: %v", i, n, err)
			}
			checkClean(t, db)
			db.Close()
			if statErr == nil {
				complete++
			} else {
				absent++
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".creating-") {
				leftovers++
			}
		}
	}
	t.Logf("FI-7: %d kills; %d stores complete, %d never created (a fresh Open created them); %d temporary files left behind", kills, complete, absent, leftovers)
}
