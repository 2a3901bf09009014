package main

import (
	"encoding/json"
	"fmt"
	"math"
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
			strings.HasPrefix(x.Goal, "durable Add, mean") || strings.HasPrefix(x.Goal, "indexed read stays flat")
		if single && x.Paired != "" {
			t.Errorf("goal %q shows a round-by-round ratio %q", x.Goal, x.Paired)
		}
		if !single && x.Paired != "1.00 (1.00–1.00)" {
			t.Errorf("goal %q: round by round %q, want 1.00 (1.00–1.00)", x.Goal, x.Paired)
		}
	}
}

// TestFlatness checks the scaling verdict: the growth of our own part of
// the read (ours less the limit model's) from the smallest store to the
// largest, over the limit model's growth, and the readings it refuses.
func TestFlatness(t *testing.T) {
	for _, tc := range []struct {
		a, b  scalePoint
		v     float64
		shown string
		ok    bool
	}{
		// Our part grows 2×, the limit model 2×: flat.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 6000, 2000}, 1, "1.00× (our own part 2.00 µs → 4.00 µs, 2.00×; the limit model 2.00×; the whole read 2.00×)", true},
		// Our part grows 3×, the limit model 2×: 1.5, past the bound.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 8000, 2000}, 1.5, "1.50× (our own part 2.00 µs → 6.00 µs, 3.00×; the limit model 2.00×; the whole read 2.67×)", true},
		// At the bound.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 7000, 2000}, 1.25, "1.25× (our own part 2.00 µs → 5.00 µs, 2.50×; the limit model 2.00×; the whole read 2.33×)", true},
		// An O(n) lookup, a thousandfold.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 2002000, 2000}, 500, "500.00× (our own part 2.00 µs → 2.00 ms, 1000.00×; the limit model 2.00×; the whole read 667.33×)", true},
		// A failed measurement (testing.Benchmark's zero result) or a
		// missing one gives no reading, never a pass.
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 0, 2000}, 0, "no reading (a measurement is missing or failed)", false},
		{scalePoint{1000, 0, 1000}, scalePoint{1000000, 6000, 2000}, 0, "no reading (a measurement is missing or failed)", false},
		{scalePoint{1000, 3000, 0}, scalePoint{1000000, 3100, 0}, 0, "no reading (a measurement is missing or failed)", false},
		// Ours no slower than the limit model at either store.
		{scalePoint{1000, 1000, 1000}, scalePoint{1000000, 3000, 2000}, 0, "no reading (at 1000 items our read, 1.00 µs, is no slower than the limit model's)", false},
		{scalePoint{1000, 3000, 1000}, scalePoint{1000000, 1900, 2000}, 0, "no reading (at 1000000 items our read, 1.90 µs, is no slower than the limit model's)", false},
	} {
		v, shown := flatness(tc.a, tc.b)
		if math.Abs(v-tc.v) > 1e-9 || shown != tc.shown || (v > 0) != tc.ok {
			t.Errorf("flatness(%v, %v) = %v, %q; want %v, %q (a reading: %v)", tc.a, tc.b, v, shown, tc.v, tc.shown, tc.ok)
		}
	}
	// In the report: the bound decides, and a point that cannot be read
	// is said so, not failed or passed.
	goalOf := func(pts []scalePoint) goal {
		r := buildReport("test machine", nil, extras{}, pts, 0)
		return r.Goals[len(r.Goals)-1]
	}
	for _, tc := range []struct {
		b       scalePoint
		pass    bool
		verdict string
	}{
		{scalePoint{1000000, 7000, 2000}, true, "pass"},
		{scalePoint{1000000, 7001, 2000}, false, "falls short"},
		{scalePoint{1000000, 0, 2000}, false, "no reading"},
	} {
		pts := []scalePoint{{1000, 3000, 1000}, tc.b}
		g := goalOf(pts)
		if g.Pass != tc.pass || !strings.HasPrefix(g.Goal, "indexed read stays flat from 1000 to 1000000 items") || g.Target != "≤ 1.25×" {
			t.Errorf("point %v: goal %+v", tc.b, g)
		}
		if want := map[bool]string{true: "no reading"}[tc.verdict == "no reading"]; g.Verdict != want {
			t.Errorf("point %v: verdict field %q, want %q", tc.b, g.Verdict, want)
		}
		line := fmt.Sprintf("| %s | %s | %s | %s |", g.Goal, g.Target, g.Shown, tc.verdict)
		if md := buildReport("test machine", nil, extras{}, pts, 0).markdown(); !strings.Contains(md, line) {
			t.Errorf("point %v: the goal table lacks %q", tc.b, line)
		}
	}
}

// TestFailedBenchmarkIsNoReading: a benchmark that failed has a zero
// result, and no goal it decides may pass on it (a read of 0 ns would be
// "infinitely faster" than SQLite); nor may a zero file size pass.
func TestFailedBenchmarkIsNoReading(t *testing.T) {
	var b []*bench
	for _, name := range []string{"read/limit model", "read/SQLite WAL", "read/keyring file", "write/limit model", "write64/bbolt Batch"} {
		b = append(b, &bench{Name: name, Samples: []float64{100, 200}})
	}
	// read/secitemdb, write/secitemdb and write64/secitemdb failed.
	for _, name := range []string{"read/secitemdb", "write/secitemdb", "write64/secitemdb"} {
		b = append(b, &bench{Name: name, Samples: []float64{0, 0}})
	}
	r := buildReport("test machine", b, extras{UnlockMs: 150}, nil, 0)
	for _, g := range r.Goals {
		if strings.HasPrefix(g.Goal, "unlock") {
			continue
		}
		if g.Pass || g.Verdict != "no reading" || g.Value != 0 || g.Shown != noReading {
			t.Errorf("goal %q after a failed benchmark: %+v", g.Goal, g)
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("the report does not marshal: %v", err)
	}
}

// A long name is wrapped under its tick; a short one keeps its two lines.
func TestTickLabel(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"read/limit model", "read\nlimit model"},
		{"read/the layout through bbolt (informative)", "read\nthe layout\nthrough bbolt\n(informative)"},
		{"read/secitemdb, 1,024 keys cycled (Runs 1–7)", "read\nsecitemdb, 1,024\nkeys cycled\n(Runs 1–7)"},
		{"write64/a-name-longer-than-a-line x", "write64\na-name-longer-than-a-line\nx"},
	} {
		if got := tickLabel(tc.name); got != tc.want {
			t.Errorf("tickLabel(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
