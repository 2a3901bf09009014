package property_test

import (
	"os"
	"testing"

	istore "github.com/secitemdb/secitemdb/internal/store"
)

// TestMain makes the posting log merge into the index every eight items
// or so: the model then meets postings in the log, in the index and in
// both within one query, merges inside group commits and rolled-back
// merges, all of which a store only reaches after thousands of items by
// default.
func TestMain(m *testing.M) {
	istore.SetMergeLimits(24, 24)
	os.Exit(m.Run())
}
