//go:build linux

package robustness

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/secitemdb/secitemdb/secitem"
)

func childFill(fail func(error) int) int {
	limit, _ := strconv.ParseUint(os.Getenv("SECITEM_LIMIT"), 10, 64)
	seed, _ := strconv.ParseUint(os.Getenv("SECITEM_SEED"), 10, 64)
	rng := mrand.New(mrand.NewPCG(seed, 1))
	signal.Ignore(syscall.SIGXFSZ) // writes past the limit fail with EFBIG instead
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return fail(err)
	}
	db, err := secitem.Open(os.Getenv("SECITEM_PATH"), options())
	if err != nil {
		report("F open %d", statusOf(err))
		return 0
	}
	report("R")
	for i := 0; ; i++ {
		key := fmt.Sprintf("fill-%s-%d", os.Getenv("SECITEM_RUN"), i)
		v := make([]byte, 1+rng.IntN(64<<10))
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		d := genp(key)
		d[secitem.ValueData] = v
		report("B add %s %s", key, hashOf(v))
		if _, err := db.Add(d); err != nil {
			report("F %d", statusOf(err))
			// The handle must now refuse writes rather than try again.
			_, err2 := db.Add(genp(key + "-again"))
			report("G %d", statusOf(err2))
			if err := db.Close(); err != nil {
				report("C %d", statusOf(err))
			}
			return 0
		}
		report("A add %s %s", key, hashOf(v))
	}
}

// FI-5: a store that fills its file-size limit (RLIMIT_FSIZE in a child
// process, crossing bbolt's growth steps) fails with a typed error, never
// a panic; every acknowledged item survives, the call that failed left no
// partial item, and once the limit is gone writes work again and the store
// checks clean.
func TestDiskFull(t *testing.T) {
	n := runs(20, 500)
	rng := mrand.New(mrand.NewPCG(9, 10))
	path := filepath.Join(t.TempDir(), "full.keychain")
	seedStore(t, path, nil)
	statuses := map[string]int{}
	acked := map[string]string{}
	for i := 0; i < n; i++ {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		limit := fi.Size() + 64<<10 + int64(rng.IntN(4<<20))
		c := startChild(t, "fill", "SECITEM_PATH="+path, fmt.Sprintf("SECITEM_LIMIT=%d", limit),
			fmt.Sprintf("SECITEM_SEED=%d", rng.Uint64()), fmt.Sprintf("SECITEM_RUN=%d", i))
		lines := c.wait()
		if c.err != nil {
			t.Fatalf("run %d: the child failed (%v): %s", i, c.err, c.stderrText())
		}
		var failed, again string
		var pending string
		for _, l := range lines {
			f := strings.Fields(l)
			switch f[0] {
			case "A":
				acked[f[2]] = f[3]
			case "B":
				pending = f[2]
			case "F":
				failed = f[len(f)-1]
			case "G":
				again = f[1]
			}
		}
		if failed == "" {
			t.Fatalf("run %d: the store never reported the full disk: %v", i, lines)
		}
		statuses[failed]++
		if failed != strconv.Itoa(int(secitem.ErrDiskFull)) {
			t.Fatalf("run %d: a full disk reported status %s, want ErrDiskFull", i, failed)
		}
		if again != strconv.Itoa(int(secitem.ErrIO)) {
			t.Fatalf("run %d: the write after the failed commit got status %q, want ErrIO (the handle refuses writes until reopened)", i, again)
		}
		db := openStore(t, path)
		for key, hash := range acked {
			q := genp(key)
			q[secitem.ReturnData] = true
			v, err := db.CopyMatching(q)
			if err != nil || hashOf(v.([]byte)) != hash {
				t.Fatalf("run %d: acknowledged item %s lost after the disk filled: %v", i, key, err)
			}
		}
		// The failed call: fully there (its commit reached the disk before
		// the error, which it cannot have) or fully absent.
		if countOf(t, db, genp(pending)) != 0 {
			t.Fatalf("run %d: the failed Add left its item behind", i)
		}
		checkClean(t, db)
		d := genp(fmt.Sprintf("after-%d", i))
		d[secitem.ValueData] = []byte("x")
		if _, err := db.Add(d); err != nil {
			t.Fatalf("run %d: writing after the limit was lifted: %v", i, err)
		}
		db.Close()
	}
	t.Logf("FI-5: %d runs filled the file-size limit (statuses %v); %d acknowledged items checked after each, 0 lost, 0 partial", n, statuses, len(acked))
}

// FI-6: the store's file descriptor is swapped under it for /dev/full
// (every write fails with ENOSPC) or /dev/null (writes vanish and fsync
// fails with EINVAL, the fsyncgate case). The failing call reports an
// error; the handle then refuses every write until it is reopened (an
// fsync is never retried and reported as success); after reopening, the
// call's item is fully there or fully absent and everything acknowledged
// before is intact.
func TestWriteAndSyncErrors(t *testing.T) {
	n := runs(20, 1_000)
	for i := 0; i < n; i++ {
		dev := []string{"/dev/full", "/dev/null"}[i%2]
		path := filepath.Join(t.TempDir(), "eio.keychain")
		items := seedStore(t, path, nil)
		db := openStore(t, path)
		swapFile(t, path, dev)
		d := genp("during-the-fault")
		d[secitem.ValueData] = []byte("v")
		_, err := db.Add(d)
		if st := statusOf(err); st != secitem.ErrIO && st != secitem.ErrDiskFull {
			t.Fatalf("%s: Add with a failing file: %v, want ErrIO or ErrDiskFull", dev, err)
		}
		_, err2 := db.Add(genp("after-the-fault"))
		if statusOf(err2) != secitem.ErrIO {
			t.Fatalf("%s: the next write after a failed commit: %v, want ErrIO until reopened", dev, err2)
		}
		db.Close()
		db = openStore(t, path)
		if got := countOf(t, db, secitem.Dict{secitem.Class: secitem.ClassGenericPassword}); got != items && got != items+1 {
			t.Fatalf("%s: %d items after reopening, want %d (or %d with the failed call's)", dev, got, items, items+1)
		}
		verifySeeded(t, db)
		checkClean(t, db)
		db.Close()
	}
	t.Logf("FI-6: %d injected write (ENOSPC) and fsync (EINVAL) failures; each failing call reported, the handle refused further writes, the store intact after reopening", n)
}

// swapFile replaces, with dup2, the descriptor this process has open on
// path by one open on dev.
func swapFile(t *testing.T, path, dev string) {
	t.Helper()
	abs, _ := filepath.Abs(path)
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	target := -1
	for _, e := range entries {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && link == abs {
			target, _ = strconv.Atoi(e.Name())
		}
	}
	if target < 0 {
		t.Fatalf("no descriptor open on %s", abs)
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if err := syscall.Dup3(int(f.Fd()), target, 0); err != nil {
		t.Fatal(err)
	}
}
