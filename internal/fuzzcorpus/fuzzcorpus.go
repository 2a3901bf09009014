// Package fuzzcorpus helps fuzz targets insist on their checked-in seed
// corpus: a target whose corpus directory is empty (a moved folder, a stale
// glob) would otherwise fuzz from nothing without anyone noticing.
package fuzzcorpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Require fails f unless testdata/fuzz/<name> holds at least one seed.
func Require(f *testing.F, name string) {
	f.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", name))
	if err != nil || len(entries) == 0 {
		f.Fatalf("the seed corpus testdata/fuzz/%s is empty or missing", name)
	}
}

// Write stores seeds for target name in Go's corpus format (used by the
// tests' -gencorpus helpers, never by the fuzz targets themselves).
func Write(dir, name string, seeds ...[]any) error {
	d := filepath.Join(dir, "testdata", "fuzz", name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	for i, args := range seeds {
		b := []byte("go test fuzz v1\n")
		for _, a := range args {
			b = append(b, []byte(goLiteral(a))...)
			b = append(b, '\n')
		}
		if err := os.WriteFile(filepath.Join(d, seedName(i)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func seedName(i int) string {
	return "seed-" + string(rune('a'+i/26)) + string(rune('a'+i%26))
}
