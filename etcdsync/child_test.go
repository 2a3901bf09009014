package etcdsync

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/secitemdb/secitemdb/secitem"
)

const childEnv = "ETCDSYNC_TEST_CHILD"

// runChild plays a store in its own process: it opens the store, joins
// the group, starts an engine and adds synchronizable items k<from>,
// k<from+1>, ... reporting each acknowledged Add on standard output, until
// it is killed.
func runChild(role string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, role+":", err); return 2 }
	path, group := os.Getenv("ETCDSYNC_DB"), os.Getenv("ETCDSYNC_GROUP")
	from, _ := strconv.Atoi(os.Getenv("ETCDSYNC_FROM"))
	db, err := secitem.Open(path, &secitem.Options{Device: deviceForTests(), PasscodeCost: cheap})
	if err != nil {
		return fail(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{os.Getenv("ETCDSYNC_ENDPOINT")}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fail(err)
	}
	kdfTime, kdfMemory, kdfThreads = 1, 64, 1
	if err := Join(t0(), db, cli, group, []byte("group secret")); err != nil {
		return fail(err)
	}
	e, err := Start(db, cli, group, Options{Interval: 5 * time.Millisecond})
	if err != nil {
		return fail(err)
	}
	fmt.Println("R")
	for i := from; role == "writer"; i++ {
		_, err := db.Add(syncItem(fmt.Sprintf("child-%d", i), secitem.ValueData, []byte(fmt.Sprintf("v%d", i))))
		if err != nil && !(i == from && errors.Is(err, secitem.ErrDuplicateItem)) {
			// (The first Add may have committed just before the last
			// kill, unacknowledged: then it is there already.)
			return fail(err)
		}
		fmt.Printf("A %d\n", i)
		// Updates and deletes (tombstones) in flight too: each announced
		// ("B") before it runs and acknowledged after.
		if j := i - 1; i%3 == 2 && j >= from {
			fmt.Printf("B U %d\n", j)
			if err := db.Update(syncItem(fmt.Sprintf("child-%d", j)), secitem.Dict{secitem.ValueData: []byte(fmt.Sprintf("u%d", j))}); err != nil {
				return fail(err)
			}
			fmt.Printf("U %d\n", j)
		}
		if j := i - 3; i%5 == 4 && j >= from {
			fmt.Printf("B D %d\n", j)
			if err := db.Delete(syncItem(fmt.Sprintf("child-%d", j))); err != nil {
				return fail(err)
			}
			fmt.Printf("D %d\n", j)
		}
		e.Poke()
	}
	select {}
}

// FI: a store killed in the middle of syncing, and restarted, loses
// nothing it acknowledged: every item it added reaches the other store,
// and every item the other store added reaches it.
func TestKillAndRestartMember(t *testing.T) {
	et := startEtcd(t)
	dir := t.TempDir()
	b := newMember(t, et, dir, "b", "kill")
	path := filepath.Join(dir, "child.keychain")
	acked := -1
	// The acknowledged state of each child item ("v3", "u3" or deleted),
	// and the other state an unacknowledged call may have left.
	const deleted = "(deleted)"
	want, alt := map[int]string{}, map[int]string{}
	for round := 0; round < 10; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"=writer", "ETCDSYNC_DB="+path, "ETCDSYNC_GROUP=kill",
			"ETCDSYNC_ENDPOINT="+et.endpoint, fmt.Sprintf("ETCDSYNC_FROM=%d", acked+1))
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		start := time.Now()
		for sc.Scan() {
			var n int
			var op string
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "A "):
				fmt.Sscanf(line, "A %d", &n)
				acked = n
				want[n] = fmt.Sprintf("v%d", n)
			case strings.HasPrefix(line, "B "):
				fmt.Sscanf(line, "B %s %d", &op, &n)
				alt[n] = map[string]string{"U": fmt.Sprintf("u%d", n), "D": deleted}[op]
			case strings.HasPrefix(line, "U "), strings.HasPrefix(line, "D "):
				fmt.Sscanf(line, "%s %d", &op, &n)
				want[n] = alt[n]
				delete(alt, n)
			}
			if time.Since(start) > time.Duration(100+round*30)*time.Millisecond {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		cmd.Wait()
		// An alt left over is the call the kill interrupted: it may or may
		// not have happened, and no later run repeats it.
		// Meanwhile the other store writes too.
		if _, err := b.db.Add(syncItem(fmt.Sprintf("b-%d", round), secitem.ValueData, []byte("from b"))); err != nil {
			t.Fatal(err)
		}
	}
	if acked < 0 {
		t.Fatal("the child acknowledged nothing")
	}
	// Restart the killed store for good, in this process, and converge.
	a := &member{name: "a", db: openStore(t, path)}
	cli := et.client(t)
	var err error
	if a.e, err = Start(a.db, cli, "kill", Options{Interval: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	defer func() { a.e.Close(); a.db.Close() }()
	converge(t, []*member{a, b})
	updates, deletes := 0, 0
	for i := 0; i <= acked; i++ {
		for _, m := range []*member{a, b} {
			got := deleted
			v, err := m.db.CopyMatching(syncItem(fmt.Sprintf("child-%d", i), secitem.ReturnData, true))
			switch {
			case err == nil:
				got = string(v.([]byte))
			case !errors.Is(err, secitem.ErrItemNotFound):
				t.Fatalf("%s: child-%d: %v", m.name, i, err)
			}
			if got != want[i] && got != alt[i] {
				t.Fatalf("%s: child-%d is %s, want the acknowledged %s", m.name, i, got, want[i])
			}
		}
		switch want[i] {
		case deleted:
			deletes++
		case fmt.Sprintf("u%d", i):
			updates++
		}
	}
	t.Logf("10 kills of a syncing store; %d acknowledged items (%d then updated, %d then deleted), the same on both stores after restart", acked+1, updates, deletes)
}

// etcd restarts while both stores keep writing; the writes made while it
// was down wait in the journals and converge once it is back.
func TestEtcdRestart(t *testing.T) {
	et := startEtcd(t)
	dir := t.TempDir()
	a := newMember(t, et, dir, "a", "restart")
	b := newMember(t, et, dir, "b", "restart")
	a.db.Add(syncItem("before", secitem.ValueData, []byte("1")))
	converge(t, []*member{a, b})
	et.stop()
	for i := 0; i < 20; i++ {
		m := []*member{a, b}[i%2]
		if _, err := m.db.Add(syncItem(fmt.Sprintf("offline-%d", i), secitem.ValueData, []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if st := a.e.Status(); st.Pending == 0 {
		t.Errorf("no change queued while etcd was down: %+v", st)
	}
	et.restarting = true
	et.start()
	converge(t, []*member{a, b})
	for i := 0; i < 20; i++ {
		for _, m := range []*member{a, b} {
			if _, err := m.db.CopyMatching(syncItem(fmt.Sprintf("offline-%d", i))); err != nil {
				t.Fatalf("%s lacks offline-%d: %v", m.name, i, err)
			}
		}
	}
}
