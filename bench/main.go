// Command bench measures secitemdb beside the physical-limit model of
// ../../shared/design/performance.md and beside its peers
// (github.com/99designs/keyring's file backend, SQLite through
// modernc.org/sqlite in WAL mode), in one run, and writes the tables of
// BENCHMARKS.md and its plots.
//
// Run it from this directory: go run . [-items 100000] [-rounds 6] [-scale]
// (-replot draws the plots again from a results.json without measuring)
//
// Each benchmark runs in -rounds interleaved rounds (every benchmark once
// per round), so noise on a shared machine spreads over all of them; the
// tables give the median and the range of the rounds. It is a separate
// module so the library's dependency graph stays bbolt and x/crypto.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

var (
	items   = flag.Int("items", 100_000, "items in the stores read from")
	rounds  = flag.Int("rounds", 6, "interleaved rounds of every benchmark")
	scale   = flag.Bool("scale", false, "also measure reads at 1k, 10k, 100k and 1M items (loads 1M items: minutes)")
	outDir  = flag.String("out", "results", "where to write results.json and the plots")
	workDir = flag.String("work", "", "where to create the stores (default: a temporary directory)")
	replot  = flag.Bool("replot", false, "measure nothing: draw the plots again from -out's results.json")
)

// A bench is one measured operation.
type bench struct {
	Name  string // "read/secitemdb"
	Group string // "read", "durable write", ...
	run   func(b *testing.B)
	// Samples are ns/op of each round; Allocs and Bytes of the last.
	Samples []float64
	Allocs  int64
	Bytes   int64
}

func (b *bench) median() float64 { return median(b.Samples) }

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (b *bench) spread() (lo, hi float64) {
	s := append([]float64(nil), b.Samples...)
	sort.Float64s(s)
	return s[0], s[len(s)-1]
}

func main() {
	testing.Init()
	flag.Parse()
	if *replot {
		must(replotResults(*outDir))
		return
	}
	dir := *workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "secitemdb-bench")
		must(err)
		defer os.RemoveAll(d)
		dir = d
	}
	must(os.MkdirAll(*outDir, 0o755))
	start := time.Now()
	env := environment()
	fmt.Fprintf(os.Stderr, "bench: %s\n", env)

	fmt.Fprintf(os.Stderr, "bench: loading stores of %d items...\n", *items)
	benches := openStores(dir, *items).benches()
	for r := 0; r < *rounds; r++ {
		for _, b := range benches {
			res := testing.Benchmark(b.run)
			b.Samples = append(b.Samples, float64(res.NsPerOp()))
			b.Allocs, b.Bytes = res.AllocsPerOp(), res.AllocedBytesPerOp()
			fmt.Fprintf(os.Stderr, "round %d %-40s %12.0f ns/op\n", r+1, b.Name, float64(res.NsPerOp()))
		}
	}
	extra := measureExtras(dir, *items)
	var scaling []scalePoint
	if *scale {
		scaling = measureScaling(dir)
	}
	report := buildReport(env, benches, extra, scaling, time.Since(start))
	fmt.Print(report.markdown())
	// Goals keep only finite values (buildReport), but a row of a failed
	// benchmark, or extras, could still hold what JSON cannot: then no
	// results.json is left in the directory, rather than an earlier
	// run's beside this run's plots, and the program fails.
	js, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		os.Remove(filepath.Join(*outDir, "results.json"))
		must(fmt.Errorf("results.json not written: %w", err))
	}
	must(os.WriteFile(filepath.Join(*outDir, "results.json"), js, 0o644))
	must(plotLatency(filepath.Join(*outDir, "latency.png"), benches))
	if len(scaling) > 0 {
		must(plotScaling(filepath.Join(*outDir, "scaling.png"), scaling))
	}
}

// replotResults draws the plots of the run recorded in dir/results.json,
// for a change in how they are drawn.
func replotResults(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	var benches []*bench
	for _, row := range r.Rows {
		benches = append(benches, &bench{Name: row.Name, Group: row.Group, Samples: row.Rounds})
	}
	if err := plotLatency(filepath.Join(dir, "latency.png"), benches); err != nil {
		return err
	}
	if len(r.Scaling) > 0 {
		return plotScaling(filepath.Join(dir, "scaling.png"), r.Scaling)
	}
	return nil
}

func environment() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, %s %s/%s, %s", cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02"))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
