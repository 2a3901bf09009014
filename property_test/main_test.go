package property_test

import (
	"os"
	"testing"

	istore "github.com/secitemdb/secitemdb/internal/store"
)

// TestMain keeps the posting log under 24 postings, so most commits
// merge a slice of it into the index: the model then meets postings in
// the log, in the index and in both within one query, merges inside group
// commits and replays that skip merged slices, all of which a store only
// reaches after thousands of items by default.
func TestMain(m *testing.M) {
	istore.SetMergeLimits(24, 24)
	os.Exit(m.Run())
}
