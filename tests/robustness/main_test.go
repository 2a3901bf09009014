// Package robustness holds secitemdb's fault, bad-input and concurrency
// tests (the matrix of docs/reliability.md): crashes at random and exact
// points, crash images, disk-full and I/O errors, corrupted files,
// linearizability under concurrency, two processes on one file, and
// whole-file rollback.
//
// Several tests run the test binary again as a child process (see
// TestMain): a child does the work and reports on standard output; the
// parent kills it, reopens the store and checks it. The CI tier runs by
// default; `go test -tags soak ./tests/robustness` runs the soak tier.
package robustness

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/internal/failpoint"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

// childEnv names the child role a re-executed test binary plays.
const childEnv = "SECITEM_ROBUSTNESS_CHILD"

func TestMain(m *testing.M) {
	// The posting log stays under 48 postings (most commits merge a slice
	// of it into the index), so crashes, faults and races meet merges too
	// (children included).
	store.SetMergeLimits(48, 48)
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(m.Run())
}

// runs picks the CI or soak count of a test; -short divides the CI count
// by ten.
func runs(ci, soakRuns int) int {
	if soak {
		return soakRuns
	}
	if testing.Short() {
		return max(1, ci/10)
	}
	return ci
}

var (
	deviceSecret = bytes.Repeat([]byte{0x5e}, 32)
	cheapCost    = &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}
)

// options are the options every test and child opens a store with.
func options() *secitem.Options {
	return &secitem.Options{Device: protect.NewStaticDevice(deviceSecret), PasscodeCost: cheapCost, Timeout: 2 * time.Second}
}

func openStore(t testing.TB, path string) *secitem.DB {
	t.Helper()
	db, err := secitem.Open(path, options())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return db
}

// hashOf names a value in reports without revealing it.
func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

func statusOf(err error) secitem.Status {
	var e *secitem.Error
	if errors.As(err, &e) {
		return e.Status
	}
	if err != nil {
		return -1
	}
	return 0
}

// checkClean fails t unless the store's structure, index and version
// table are consistent and every item opens and authenticates.
func checkClean(t testing.TB, db *secitem.DB) {
	t.Helper()
	rep, err := db.Check()
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("Check found %d problems: %v", len(rep.Problems), rep.Problems)
	}
	for _, class := range []string{secitem.ClassGenericPassword, secitem.ClassInternetPassword, secitem.ClassCertificate, secitem.ClassKey} {
		err := db.Items(class, true, func(item secitem.Dict, err error) bool {
			if err != nil {
				t.Errorf("a %s item does not open: %v", class, err)
			}
			return true
		})
		if err != nil {
			t.Fatalf("Items: %v", err)
		}
	}
}

// child is a running child process and the lines it has reported.
type child struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
	err   error // the process's exit, once done is closed

	mu     sync.Mutex
	stderr bytes.Buffer
}

// startChild runs this test binary as a child playing role, with extra
// environment variables.
func startChild(t testing.TB, role string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), done: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &c.mu, w: &c.stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// kill sends SIGKILL and waits for the child to end; it returns every line
// the child reported.
func (c *child) kill() []string {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	return c.wait()
}

// wait collects the child's lines until it ends.
func (c *child) wait() []string {
	var out []string
	for l := range c.lines {
		out = append(out, l)
	}
	<-c.done
	return out
}

// killed reports whether the child ended by SIGKILL.
func (c *child) killed() bool {
	var ee *exec.ExitError
	if !errors.As(c.err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func (c *child) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// report is what a child writes to its parent: one line per event, each
// one write(2), so a kill never tears a line the parent then trusts.
func report(format string, args ...any) {
	_, _ = os.Stdout.WriteString(fmt.Sprintf(format, args...) + "\n")
}

// crashAt arms a failpoint that kills the process on the k-th time step
// is reached: the "crash at an exact point" of FI-2.
func crashAt(step string, k int) {
	n := 0
	var mu sync.Mutex
	failpoint.Set(func(s string) error {
		if s != step {
			return nil
		}
		mu.Lock()
		n++
		hit := n == k
		mu.Unlock()
		if hit {
			report("X %s", step)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
		return nil
	})
}

func runChild(role string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, role+":", err)
		return 2
	}
	if spec := os.Getenv("SECITEM_CRASH_AT"); spec != "" {
		step, k, _ := strings.Cut(spec, "#")
		n, _ := strconv.Atoi(k)
		crashAt(step, n)
	}
	switch role {
	case "workload":
		return childWorkload(fail)
	case "passcode":
		return childPasscode(fail)
	case "backup":
		return childBackup(fail)
	case "restore":
		return childRestore(fail)
	case "create":
		return childCreate(fail)
	case "hold":
		return childHold(fail)
	case "fill":
		return childFill(fail)
	}
	return fail(fmt.Errorf("unknown child role %q", role))
}
