package main

import (
	"strings"
	"testing"
)

// TestPairedRatio checks the round-by-round ratio: the median and range
// of a[i]/b[i], rounds missing on either side left out.
func TestPairedRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b []float64
		want string
	}{
		{[]float64{4, 9, 6}, []float64{2, 3, 2}, "3.00 (2.00–3.00)"},
		{[]float64{300, 600}, []float64{1, 2, 5}, "300 (300–300)"},
		{[]float64{5}, nil, ""},
	} {
		if got := pairedRatio(tc.a, tc.b); got != tc.want {
			t.Errorf("pairedRatio(%v, %v) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestReportPairsRounds builds a report in which the ratio of medians and
// the round-by-round ratio disagree (a busy round of one store falls on a
// quiet round of the other) and checks that the goal table shows both.
func TestReportPairsRounds(t *testing.T) {
	b := []*bench{
		{Name: "read/limit model", Samples: []float64{1000, 2000, 3000}},
		{Name: "read/secitemdb", Samples: []float64{1500, 3000, 4500}},
	}
	r := buildReport("test machine", b, extras{}, nil, 0)
	var g goal
	for _, x := range r.Goals {
		if strings.HasPrefix(x.Goal, "CopyMatching") {
			g = x
		}
	}
	if g.Shown != "1.50×" || g.Paired != "1.50 (1.50–1.50)" {
		t.Fatalf("read goal: measured %q, round by round %q", g.Shown, g.Paired)
	}
	b[1].Samples = []float64{4500, 1500, 3000} // same median, other rounds
	r = buildReport("test machine", b, extras{}, nil, 0)
	for _, x := range r.Goals {
		if strings.HasPrefix(x.Goal, "CopyMatching") {
			g = x
		}
	}
	if g.Shown != "1.50×" || g.Paired != "1.00 (0.75–4.50)" {
		t.Fatalf("read goal with shuffled rounds: measured %q, round by round %q", g.Shown, g.Paired)
	}
	if md := r.markdown(); !strings.Contains(md, "| 1.00 (0.75–4.50) |") {
		t.Fatalf("the goal table lacks the round-by-round ratio:\n%s", md)
	}
	// Goals that do not compare two benchmarks have no such ratio, not
	// the one of the goal before them.
	// Every benchmark of the goals has rounds here, so a stale ratio
	// would show.
	var all []*bench
	for _, name := range []string{"read/limit model", "read/secitemdb", "read/SQLite WAL", "read/keyring file",
		"write/limit model", "write/secitemdb", "write64/bbolt Batch", "write64/secitemdb"} {
		all = append(all, &bench{Name: name, Samples: []float64{100, 200}})
	}
	r = buildReport("test machine", all, extras{UnlockMs: 150, SeqAdds: 10, SeqMeanUs: 300, FileSize: 3, RecordBytes: 2},
		[]scalePoint{{Items: 1000, Secitem: 1}, {Items: 1000000, Secitem: 2}}, 0)
	for _, x := range r.Goals {
		single := strings.HasPrefix(x.Goal, "unlock") || strings.HasPrefix(x.Goal, "file size") ||
			strings.HasPrefix(x.Goal, "durable Add, mean") || strings.HasPrefix(x.Goal, "read by primary key")
		if single && x.Paired != "" {
			t.Errorf("goal %q shows a round-by-round ratio %q", x.Goal, x.Paired)
		}
		if !single && x.Paired != "1.00 (1.00–1.00)" {
			t.Errorf("goal %q: round by round %q, want 1.00 (1.00–1.00)", x.Goal, x.Paired)
		}
	}
}

// TestFlatness checks the scaling verdict: the read's growth from the
// smallest store to the largest, set against the limit model's growth.
func TestFlatness(t *testing.T) {
	for _, tc := range []struct {
		a, b  scalePoint
		shown string
		pass  bool
	}{
		// Grows 2.2× where the limit model grows 2×: flat.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 6600, 2000}, "1.10× its growth (secitemdb 2.20×, the limit model 2.00×)", true},
		// Grows 2.6× where the limit model grows 1.8×: not flat.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 7800, 1800}, "1.44× its growth (secitemdb 2.60×, the limit model 1.80×)", false},
		// An O(n) lookup, a thousandfold.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 3e6, 2000}, "500.00× its growth (secitemdb 1000.00×, the limit model 2.00×)", false},
		// No limit-model reading: no verdict.
		{scalePoint{1000, 3000, 0}, scalePoint{1000000, 3100, 0}, "1.03× (no limit-model reading)", false},
	} {
		_, shown, pass := flatness(tc.a, tc.b)
		if shown != tc.shown || pass != tc.pass {
			t.Errorf("flatness(%v, %v) = %q, %v; want %q, %v", tc.a, tc.b, shown, pass, tc.shown, tc.pass)
		}
	}
}
