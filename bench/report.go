package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

type row struct {
	Name   string    `json:"name"`
	Group  string    `json:"group"`
	Median float64   `json:"medianNs"`
	Min    float64   `json:"minNs"`
	Max    float64   `json:"maxNs"`
	Allocs int64     `json:"allocsPerOp"`
	Bytes  int64     `json:"bytesPerOp"`
	Rounds []float64 `json:"roundsNs"`
}

type goal struct {
	Goal   string  `json:"goal"`
	Target string  `json:"target"`
	Value  float64 `json:"value"`
	Shown  string  `json:"shown"`
	Pass   bool    `json:"pass"`
	// Paired is, for a goal that compares two benchmarks, the median of
	// their ratio taken round by round, and its range: each round runs
	// the two within seconds of each other, so the host's slower
	// stretches fall on both, where the ratio of the two medians can
	// pair a quiet round of one with a busy round of the other.
	Paired string `json:"paired,omitempty"`
	// Verdict, when set, replaces "pass" or "falls short" (a goal the run
	// could not measure).
	Verdict string `json:"verdict,omitempty"`
}

type report struct {
	Environment string       `json:"environment"`
	Items       int          `json:"items"`
	Rounds      int          `json:"rounds"`
	Duration    string       `json:"duration"`
	Rows        []row        `json:"rows"`
	Extras      extras       `json:"extras"`
	Scaling     []scalePoint `json:"scaling,omitempty"`
	Goals       []goal       `json:"goals"`
}

func buildReport(env string, benches []*bench, e extras, scaling []scalePoint, d time.Duration) report {
	r := report{Environment: env, Items: *items, Rounds: *rounds, Duration: d.Round(time.Second).String(), Extras: e, Scaling: scaling}
	by := map[string]float64{}
	samples := map[string][]float64{}
	for _, b := range benches {
		samples[b.Name] = b.Samples
		lo, hi := b.spread()
		r.Rows = append(r.Rows, row{Name: b.Name, Group: b.Group, Median: b.median(), Min: lo, Max: hi, Allocs: b.Allocs, Bytes: b.Bytes, Rounds: b.Samples})
		by[b.Name] = b.median()
	}
	// paired is set by ratio and taken by the next add.
	var paired string
	ratio := func(a, b string) float64 {
		paired = pairedRatio(samples[a], samples[b])
		return by[a] / by[b]
	}
	add := func(g, target string, v float64, shown string, pass bool) {
		x := goal{Goal: g, Target: target, Value: v, Shown: shown, Pass: pass, Paired: paired}
		if !(v > 0) || math.IsInf(v, 0) {
			// A benchmark that failed has no result (testing.Benchmark
			// returns zero), and a ratio with it is 0 or infinite: a
			// goal it decides has no reading, and JSON holds no Inf. A
			// caller that knows why may say so in shown.
			if !strings.HasPrefix(shown, "no reading") {
				shown = noReading
			}
			x = goal{Goal: g, Target: target, Shown: shown, Verdict: "no reading"}
		}
		r.Goals = append(r.Goals, x)
		paired = ""
	}
	v := ratio("read/secitemdb", "read/limit model")
	add("CopyMatching by primary key vs the limit model", "≤ 1.5×", v, fmt.Sprintf("%.2f×", v), v <= 1.5)
	v = ratio("write/secitemdb", "write/limit model")
	add("durable Add vs the limit model's durable put", "≤ 1.2×", v, fmt.Sprintf("%.2f×", v), v <= 1.2)
	if e.SeqAdds > 0 {
		// The rounds above may or may not hold a merge of the posting
		// log; this is the mean of a long run of Adds, merges included.
		v = e.SeqMeanUs * 1e3 / by["write/limit model"]
		add(fmt.Sprintf("durable Add, mean of %d one by one (posting-log merges included), vs the limit model", e.SeqAdds), "≤ 1.2×", v, fmt.Sprintf("%.2f×", v), v <= 1.2)
	}
	v = ratio("write64/bbolt Batch", "write64/secitemdb")
	add("64 concurrent Adds vs bbolt Batch (throughput)", "≥ 0.7×", v, fmt.Sprintf("%.2f×", v), v >= 0.7)
	v = ratio("read/keyring file", "read/secitemdb")
	add("reads vs 99designs/keyring file backend", "≥ 300× faster", v, fmt.Sprintf("%.0f× faster", v), v >= 300)
	v = ratio("read/SQLite WAL", "read/secitemdb")
	add("reads vs SQLite (WAL) select by primary key", "≥ 3× faster", v, fmt.Sprintf("%.2f× faster", v), v >= 3)
	add("unlock (default passcode cost)", "100-300 ms", e.UnlockMs, fmt.Sprintf("%.0f ms (%s)", e.UnlockMs, e.KDF), e.UnlockMs >= 100 && e.UnlockMs <= 300)
	v = float64(e.FileSize) / float64(e.RecordBytes)
	add(fmt.Sprintf("file size vs raw sealed records at %d items", *items), "≤ 2×", v, fmt.Sprintf("%.2f× (%.1f MiB / %.1f MiB)", v, float64(e.FileSize)/(1<<20), float64(e.RecordBytes)/(1<<20)), v <= 2)
	if len(scaling) > 1 {
		a, b := scaling[0], scaling[len(scaling)-1]
		v, shown := flatness(a, b)
		add(fmt.Sprintf("indexed read stays flat from %d to %d items: our own part's growth vs the limit model's", a.Items, b.Items),
			fmt.Sprintf("≤ %.2f×", maxGrowthVsLimit), v, shown, v <= maxGrowthVsLimit)
	}
	return r
}

// noReading is what a goal shows when a measurement it needs is missing
// or failed.
const noReading = "no reading (a measurement is missing or failed)"

// maxGrowthVsLimit bounds how much faster than the limit model's read our
// own part of a read by primary key (secitemdb's read less the limit
// model's) may grow from the smallest store to the largest. The goal is
// that a query matching k items costs O(k), not O(n). Whole reads cannot
// show it: the limit model's own read grows 1.7–2.8× from 1k to 1M items
// (a deeper tree, a file past the CPU's caches and TLB), crossing the
// "at most 2×" line we first drew in most runs (BENCHMARKS.md, Run 14).
// Our own part (query parsing, tags, the lookup cache, the version check)
// should not grow at all in the ideal; it does grow with memory misses,
// and an O(n) step would make it grow a thousandfold. The allowance over
// the limit model's growth is a judgment, not a measured noise bound:
// the readings that can be worked out for Runs 3–14 are 0.58–1.07×,
// except one of Run 8's two, 1.45×, when the lookup cache held the keys
// of only a quarter of the million items (the other read 1.10×).
const maxGrowthVsLimit = 1.25

// flatness is the scaling goal's reading from point a to point b: our
// own part's growth over the limit model's growth (v), shown with the
// figures behind it; v is 0, and shown says why, when the points cannot
// give a reading (a missing or failed measurement, or a read of ours no
// slower than the limit model's, which leaves no part of our own to
// follow).
func flatness(a, b scalePoint) (v float64, shown string) {
	for _, x := range []float64{a.Secitem, a.Limit, b.Secitem, b.Limit} {
		if !(x > 0) || math.IsInf(x, 0) {
			return 0, noReading
		}
	}
	whole, limit := b.Secitem/a.Secitem, b.Limit/a.Limit
	oursA, oursB := a.Secitem-a.Limit, b.Secitem-b.Limit
	for _, p := range []scalePoint{a, b} {
		if p.Secitem <= p.Limit {
			return 0, fmt.Sprintf("no reading (at %d items our read, %s, is no slower than the limit model's)", p.Items, us(p.Secitem))
		}
	}
	ours := oursB / oursA
	v = ours / limit
	return v, fmt.Sprintf("%.2f× (our own part %s → %s, %.2f×; the limit model %.2f×; the whole read %.2f×)", v, us(oursA), us(oursB), ours, limit, whole)
}

// pairedRatio is the median and range of a[i]/b[i] over the rounds both
// ran ("" when they share none).
func pairedRatio(a, b []float64) string {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	if len(rs) == 0 {
		return ""
	}
	lo, hi := slices.Min(rs), slices.Max(rs)
	f := "%.2f"
	if hi >= 100 {
		f = "%.0f"
	}
	return fmt.Sprintf(f+" ("+f+"–"+f+")", median(rs), lo, hi)
}

func us(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func (r report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "- Machine: %s\n- Stores of %d items, 256-byte secrets; %d interleaved rounds; run took %s\n\n", r.Environment, r.Items, r.Rounds, r.Duration)
	fmt.Fprintf(&b, "| operation | median | range of rounds | allocs/op |\n|---|---|---|---|\n")
	for _, x := range r.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s – %s | %d |\n", x.Name, us(x.Median), us(x.Min), us(x.Max), x.Allocs)
	}
	fmt.Fprintf(&b, "\n| goal | target | measured | | round by round: median (range) |\n|---|---|---|---|---|\n")
	for _, g := range r.Goals {
		verdict := "pass"
		switch {
		case g.Verdict != "":
			verdict = g.Verdict
		case !g.Pass:
			verdict = "falls short"
		}
		paired := g.Paired
		if paired == "" {
			paired = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", g.Goal, g.Target, g.Shown, verdict, paired)
	}
	fmt.Fprintf(&b, "\nA ratio of two benchmarks is the ratio of their medians, which decides the verdict (the mean of the one-by-one Adds is set against the limit model's median; the scaling goal sets the growth of our read less the limit model's, from the smallest store to the largest, against the limit model's own growth); \"round by round\" is the median and range of the two benchmarks' ratio within each round.\n")
	e := r.Extras
	fmt.Fprintf(&b, "\nm_LimitAll with 100 matches among %d items: by an indexed attribute %s (%d B allocated), by one without postings (a scan) %s (%d B allocated); the 100 results hold %d B of values.\n",
		r.Items, us(e.IndexedAllNs), e.IndexedAllBytes, us(e.ScanAllNs), e.ScanAllBytes, e.ResultBytes)
	if e.SeqAdds > 0 {
		fmt.Fprintf(&b, "\n%d durable Adds one by one on the %d-item store (posting-log merges included): mean %s, median %s, 99.9th percentile %s, slowest %s.\n",
			e.SeqAdds, r.Items, us(e.SeqMeanUs*1e3), us(e.SeqMedianUs*1e3), us(e.SeqP999Us*1e3), us(e.SeqMaxUs*1e3))
	}
	if e.FirstReadNs > 0 {
		fmt.Fprintf(&b, "\nEvery one of the %d items read once in a random order right after loading (the lookup cache empty), then again: means %s and %s per read (the second pass answers the lookup from the cache).\n",
			r.Items, us(e.FirstReadNs), us(e.SecondReadNs))
	}
	if len(r.Scaling) > 0 {
		fmt.Fprintf(&b, "\n| items (each store read through once before timing) | secitemdb read | limit model read |\n|---|---|---|\n")
		for _, p := range r.Scaling {
			fmt.Fprintf(&b, "| %d | %s | %s |\n", p.Items, us(p.Secitem), us(p.Limit))
		}
	}
	return b.String()
}

// plotLatency draws the median of every operation as a point with the
// range of rounds as an error bar, on a log scale.
func plotLatency(path string, benches []*bench) error {
	p := plot.New()
	p.Title.Text = "secitemdb beside the limit model and its peers (median and range of rounds)"
	p.Y.Label.Text = "µs per operation (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	pts := make(plotter.XYs, len(benches))
	errs := make(plotter.YErrors, len(benches))
	names := make([]string, len(benches))
	for i, b := range benches {
		lo, hi := b.spread()
		m := b.median()
		pts[i] = plotter.XY{X: float64(i), Y: m / 1e3}
		errs[i].Low, errs[i].High = (m-lo)/1e3, (hi-m)/1e3
		names[i] = tickLabel(b.Name)
	}
	sc, err := plotter.NewScatter(pts)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Radius = vg.Points(4)
	sc.GlyphStyle.Color = color.RGBA{R: 60, G: 110, B: 180, A: 255}
	eb, err := plotter.NewYErrorBars(struct {
		plotter.XYer
		plotter.YErrorer
	}{pts, errs})
	if err != nil {
		return err
	}
	p.Add(sc, eb, plotter.NewGrid())
	p.NominalX(names...)
	return p.Save(16*vg.Inch, 6*vg.Inch, path)
}

// tickLabelWidth is the widest line of a benchmark's name under its
// tick: about what a column of the latency plot holds.
const tickLabelWidth = 16

// tickLabel breaks a benchmark's name for its tick: its group on the first
// line, then its words, wrapped at tickLabelWidth (a longer word keeps a
// line to itself), so that neighbouring names do not run into each other.
func tickLabel(name string) string {
	group, rest, _ := strings.Cut(name, "/")
	lines := []string{group}
	line := ""
	for _, w := range strings.Fields(rest) {
		switch {
		case line == "":
			line = w
		case len([]rune(line))+1+len([]rune(w)) <= tickLabelWidth:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// plotScaling draws read latency against store size.
func plotScaling(path string, pts []scalePoint) error {
	p := plot.New()
	p.Title.Text = "read by primary key as the store grows"
	p.X.Label.Text = "items"
	p.Y.Label.Text = "µs per read (median)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	var a, b plotter.XYs
	for _, x := range pts {
		a = append(a, plotter.XY{X: float64(x.Items), Y: x.Secitem / 1e3})
		b = append(b, plotter.XY{X: float64(x.Items), Y: x.Limit / 1e3})
	}
	if err := plotutil.AddLinePoints(p, "secitemdb CopyMatching", a, "limit model", b); err != nil {
		return err
	}
	p.Y.Min = 0
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
