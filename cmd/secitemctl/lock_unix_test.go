//go:build unix

package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A store locked by another process (its file lock held, as bbolt holds
// it) is refused after the command's timeout, with the reason.
func TestStoreLockedByAnotherProcess(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"s"}`)
	f, err := os.Open(s.getenv(envDB))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// flock locks belong to the open file, so this one excludes the
	// command's own open as another process's would.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errs, code := s.run("", "dump")
	took := time.Since(start)
	if code != 1 || !strings.Contains(errs, "in use by another process") || took > 5*time.Second {
		t.Fatalf("dump of a store locked elsewhere: exit %d, %q after %v", code, errs, took)
	}
}
