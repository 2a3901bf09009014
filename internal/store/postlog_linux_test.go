package store

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/internal/failpoint"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// A commit that fails (here the file may not grow: EFBIG) leaves its log
// changes in the table; a writer that was already waiting must not reuse
// the transaction ID and publish them. It is refused instead, like every
// write after a failed commit, and readers still see the last commit.
// (A review finding: the waiting writer committed, hiding a stored item
// and publishing 500 postings of items that were never stored.)
func TestLogFailedCommitBeforeWaitingWriter(t *testing.T) {
	smallMerges(t, 1<<20)
	db, path := openTest(t)
	c := schema.GenericPassword
	victim := insert(t, db, "victim", "s")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	defer signal.Reset(syscall.SIGXFSZ)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(st.Size())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)

	var once sync.Once
	var wg sync.WaitGroup
	var errB error
	failpoint.Set(func(step string) error {
		if step == "store:before-commit" {
			once.Do(func() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errB = db.Update(func(tx *Tx) error {
						return tx.btx.Bucket(bucketMeta).Put([]byte("waiting"), []byte("x"))
					})
				}()
				time.Sleep(100 * time.Millisecond) // B is waiting for the writer's turn
			})
		}
		return nil
	})
	defer failpoint.Set(nil)
	var ghost *Record
	errA := db.Update(func(tx *Tx) error {
		if err := tx.Delete(victim); err != nil {
			return err
		}
		for i := 0; i < 500; i++ {
			f, s := item(fmt.Sprintf("ghost%03d", i), strings.Repeat("x", 2000))
			r, _, err := tx.Insert(c, f, s)
			if err != nil {
				return err
			}
			if i == 0 {
				ghost = r
			}
		}
		return nil
	})
	wg.Wait()
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if errA == nil {
		t.Fatal("a commit past the file size limit succeeded")
	}
	if status.Of(errB) != status.IO {
		t.Fatalf("the writer waiting behind a failed commit: %v, want errSecIO", errB)
	}
	if got := findAcct(t, db, "victim"); len(got) != 1 || got[0] != victim.Row {
		t.Fatalf("the item the failed commit deleted: Find = %v, want [%d]", got, victim.Row)
	}
	lk := db.lookupTag(c, mustItem("ghost000"))
	if db.plog.holds(lk, ghost.Row, db.committed.Load()) {
		t.Fatal("a posting of the failed commit is visible")
	}
}
