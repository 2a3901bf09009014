package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/secitemdb/secitemdb/internal/jsondict"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

// Environment variables read besides SECITEM_DB. SECITEM_TEST_NOW and
// SECITEM_TEST_CHEAP_KDF exist for secitemctl's own tests (a fixed clock,
// a cheap passcode cost); never set them in real use.
const (
	envDB        = "SECITEM_DB"
	envTestNow   = "SECITEM_TEST_NOW"
	envCheapCost = "SECITEM_TEST_CHEAP_KDF"
)

// access says how a command uses the store.
type access int

const (
	readOnly  access = iota // inspection: never modifies the file
	readWrite               // modifies items
)

// openStore opens the store for a command. needKeys commands unlock a
// store that has a passcode (reading the passcode from standard input or
// the terminal). An inspection command on a store with a passcode opens it
// writable for the unlock alone: the attempt record must be written before
// the passcode is checked, and that record is the only change it makes.
func openStore(e *env, g *globals, mode access, needKeys bool) (*secitem.DB, error) {
	path := g.db
	if path == "" {
		path = e.getenv(envDB)
	}
	if path == "" {
		return nil, usageErr("no store: give --db PATH or set " + envDB)
	}
	if mode == readOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no store at %s", path)
		}
	}
	opts := &secitem.Options{
		Timeout:      g.timeout,
		ReadOnly:     mode == readOnly,
		Entitlements: secitem.Entitlements{KeychainAccessGroups: g.groups, ApplicationIdentifier: g.appID},
	}
	if g.flavor == "file-based" { // "" and "data-protection" are the default
		opts.Flavor = secitem.FileBased
	}
	if g.trace {
		opts.Logger = traceLogger(e)
	}
	if s := e.getenv(envTestNow); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", envTestNow, err)
		}
		opts.Now = func() time.Time { return t }
	}
	if e.getenv(envCheapCost) != "" {
		opts.PasscodeCost = &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}
	}
	db, err := secitem.Open(path, opts)
	if err != nil {
		return nil, err
	}
	if !needKeys || db.State() != secitem.BeforeFirstUnlock {
		return db, nil
	}
	if opts.ReadOnly {
		db.Close()
		opts.ReadOnly = false
		if db, err = secitem.Open(path, opts); err != nil {
			return nil, err
		}
	}
	pass, err := readSecret(e, g, "passcode: ")
	if err != nil {
		db.Close()
		return nil, err
	}
	defer clear(pass)
	if err := db.Unlock(pass); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// readSecret reads one passcode or password: a line of standard input
// with --passcode-stdin, else a no-echo prompt on the terminal.
func readSecret(e *env, g *globals, prompt string) ([]byte, error) {
	if g.passStdin {
		line, err := e.stdin.ReadString('\n')
		if err != nil && line == "" {
			return nil, errors.New("expected a passcode on standard input (one per line)")
		}
		return []byte(strings.TrimRight(line, "\r\n")), nil
	}
	if e.term == nil {
		return nil, errors.New("a passcode is needed: give it on standard input with --passcode-stdin")
	}
	b, err := e.term.ReadPassword(prompt)
	if err != nil {
		return nil, fmt.Errorf("a passcode is needed: give it on standard input with --passcode-stdin (%v)", err)
	}
	return b, nil
}

// traceLogger writes the call trace to standard error without times, so
// traces read the same on every run.
func traceLogger(e *env) *slog.Logger {
	h := slog.NewTextHandler(e.stderr, &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == "elapsed") {
			return slog.Attr{}
		}
		return a
	}})
	return slog.New(h)
}

func decodeDict(arg string) (secitem.Dict, error) {
	d, err := jsondict.Decode([]byte(arg))
	if err != nil {
		return nil, usageErr(err.Error())
	}
	if err := resolveObjects(secitem.Dict(d)); err != nil {
		return nil, err
	}
	return secitem.Dict(d), nil
}

// printJSON writes v as indented JSON, describing certificates and keys.
func printJSON(e *env, v any) error {
	b, err := jsondict.Marshal(v, describeRef)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(b)
	return err
}
