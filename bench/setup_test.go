package main

import (
	"path/filepath"
	"testing"
)

// The layout's read finds every item through its lookup-key posting and
// opens its secret, and finds nothing for an account it never stored: it
// measures an index probe, not a lucky Seek.
func TestLayoutReadFindsItsItems(t *testing.T) {
	dir := t.TempDir()
	const n = 200
	lm := newLimit(filepath.Join(dir, "limit.db"), n)
	defer lm.db.Close()
	lay := newLayout(filepath.Join(dir, "layout.db"), lm, n)
	defer lay.db.Close()
	for i := range n {
		if err := lay.readOne(account(i)); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	if err := lay.readOne(account(n + 1)); err == nil {
		t.Fatalf("an account never stored was found")
	}
}
