// Command secitemctl inspects and administers a secitemdb store: the four
// keychain operations with JSON dictionaries, a dump of every item, the
// identities, an integrity check, statistics, passcodes, backups, and the
// keychain pitfalls as runnable scenarios.
//
// Run "secitemctl help" for the commands. The store is --db PATH or
// $SECITEM_DB. Dictionaries are JSON objects with the keychain's keys;
// bytes are {"$data":"<base64>"}, dates {"$date":"<RFC 3339>"}.
// Diagnostics go to standard error as "secitemctl: error: ..." and the exit
// status is 1 on any error.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/secitemdb/secitemdb/secitem"
	"golang.org/x/term"
)

func main() {
	e := &env{
		stdin:  bufio.NewReader(os.Stdin),
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
		term:   ttyTerminal{},
		// Progress is drawn by default only for a person watching.
		stderrIsTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
	os.Exit(run(os.Args[1:], e))
}

// env is everything a command touches outside the store, so tests can run
// commands in-process.
type env struct {
	stdin          *bufio.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	term           terminal
	stderrIsTTY    bool
}

// globals are the flags every command accepts.
type globals struct {
	db        string
	flavor    string
	groups    multiFlag
	appID     string
	passStdin bool
	trace     bool
	output    string
	timeout   time.Duration
}

func defaultGlobals() globals {
	return globals{output: "table", timeout: 500 * time.Millisecond}
}

// register defines the global flags on fs with g's current values as
// defaults, so flags given before the command survive the command's own
// flag set.
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.db, "db", g.db, "the store `path` (default $SECITEM_DB)")
	fs.StringVar(&g.flavor, "flavor", g.flavor, "data-protection (the default) or file-based")
	fs.Var(&g.groups, "group", "an access group of the caller, in order (repeatable)")
	fs.StringVar(&g.appID, "app-id", g.appID, "the caller's application identifier")
	fs.BoolVar(&g.passStdin, "passcode-stdin", g.passStdin, "read passcodes and passwords from standard input, one per line")
	fs.BoolVar(&g.trace, "trace", g.trace, "write the call trace to standard error")
	fs.StringVar(&g.output, "o", g.output, "output format: json or table")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "how long to wait for a store held by another process")
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// command is one subcommand.
type command struct {
	args    string // argument synopsis
	summary string
	flags   func(fs *flag.FlagSet) // the command's own flags
	run     func(e *env, g *globals, args []string) error
	nargs   [2]int // minimum and maximum positional arguments (-1: any)
}

// commands are the subcommands; other files add theirs in init.
var commands = map[string]*command{
	"add":         {args: "JSON", summary: "add an item (SecItemAdd) and print the result", run: cmdAdd, nargs: [2]int{1, 1}},
	"find":        {args: "JSON", summary: "search (SecItemCopyMatching) and print the result", run: cmdFind, nargs: [2]int{1, 1}},
	"update":      {args: "QUERY_JSON ATTRS_JSON", summary: "update matching items (SecItemUpdate)", run: cmdUpdate, nargs: [2]int{2, 2}},
	"delete":      {args: "JSON", summary: "delete matching items (SecItemDelete)", run: cmdDelete, nargs: [2]int{1, 1}},
	"dump":        {args: "", summary: "print every item with every attribute (secrets hidden)", flags: dumpFlags, run: cmdDump},
	"identities":  {args: "", summary: "print each identity, and certificates and keys that pair with nothing", run: cmdIdentities},
	"asn1":        {args: "HEX | --attr CODE QUERY_JSON", summary: "print DER as a tree", flags: asn1Flags, run: cmdASN1, nargs: [2]int{1, 1}},
	"check":       {args: "", summary: "verify the file and every item; exit 1 on any problem", run: cmdCheck},
	"stats":       {args: "", summary: "items per class, protection class and access group; file size", run: cmdStats},
	"passcode":    {args: "set|change|remove", summary: "set, change or remove the passcode", run: cmdPasscode, nargs: [2]int{1, 1}},
	"unlock-test": {args: "", summary: "check a passcode (counts toward throttling)", run: cmdUnlockTest},
	"backup":      {args: "FILE", summary: "write an encrypted, password-protected portable backup", flags: progressFlags, run: cmdBackup, nargs: [2]int{1, 1}},
	"restore":     {args: "FILE", summary: "add the items of a backup", flags: progressFlags, run: cmdRestore, nargs: [2]int{1, 1}},
	"help":        {args: "[COMMAND]", summary: "show help", run: nil, nargs: [2]int{0, 1}},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: secitemctl [global flags] COMMAND [flags] [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := commands[n]
		fmt.Fprintf(w, "  %-12s %-30s %s\n", n, c.args, c.summary)
	}
	fmt.Fprintln(w, "\nglobal flags (anywhere on the command line):")
	fs := flag.NewFlagSet("secitemctl", flag.ContinueOnError)
	defaults := defaultGlobals()
	defaults.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nDictionaries are JSON objects; bytes are {\"$data\":\"<base64>\"}, dates {\"$date\":\"<RFC 3339>\"}.")
}

// run runs one command line and returns the exit status.
func run(args []string, e *env) int {
	g := defaultGlobals()
	top := flag.NewFlagSet("secitemctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(e.stdout)
			return 0
		}
		return fail(e, usageErr(err.Error()))
	}
	rest := top.Args()
	if len(rest) == 0 {
		usage(e.stderr)
		return 1
	}
	name := rest[0]
	c, ok := commands[name]
	if !ok {
		return fail(e, usageErr(fmt.Sprintf("unknown command %q (run \"secitemctl help\")", name)))
	}
	if name == "help" {
		if len(rest) > 1 {
			if h, ok := commands[rest[1]]; ok {
				fmt.Fprintf(e.stdout, "usage: secitemctl %s %s\n  %s\n", rest[1], h.args, h.summary)
				return 0
			}
		}
		usage(e.stdout)
		return 0
	}
	fs := flag.NewFlagSet("secitemctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	if c.flags != nil {
		c.flags(fs)
	}
	// Flags may come before, between or after the arguments.
	var pos []string
	for left := rest[1:]; ; {
		if err := fs.Parse(left); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(e.stdout, "usage: secitemctl %s %s\n  %s\n", name, c.args, c.summary)
				fs.SetOutput(e.stdout)
				fs.PrintDefaults()
				return 0
			}
			return fail(e, usageErr(err.Error()))
		}
		left = fs.Args()
		if len(left) == 0 {
			break
		}
		pos = append(pos, left[0])
		left = left[1:]
	}
	if len(pos) < c.nargs[0] || (c.nargs[1] >= 0 && len(pos) > c.nargs[1]) {
		return fail(e, usageErr(fmt.Sprintf("usage: secitemctl %s %s", name, c.args)))
	}
	if g.output != "json" && g.output != "table" {
		return fail(e, usageErr("-o must be json or table"))
	}
	if g.flavor != "" && g.flavor != "data-protection" && g.flavor != "file-based" {
		return fail(e, usageErr("--flavor must be data-protection or file-based"))
	}
	if err := c.run(e, &g, pos); err != nil {
		return fail(e, err)
	}
	return 0
}

type usageErr string

func (u usageErr) Error() string { return string(u) }

// exitError carries a status without a message of its own (check prints
// its report, then exits 1).
type exitError struct{}

func (exitError) Error() string { return "" }

// hintError adds a hint line after the error.
type hintError struct {
	err  error
	hint string
}

func (h hintError) Error() string { return h.err.Error() }
func (h hintError) Unwrap() error { return h.err }

func fail(e *env, err error) int {
	var x exitError
	if errors.As(err, &x) {
		return 1
	}
	msg := err.Error()
	var se *secitem.Error
	if errors.As(err, &se) {
		msg = se.Status.Error()
		if se.Detail != "" {
			msg += ": " + se.Detail
		}
	}
	fmt.Fprintf(e.stderr, "secitemctl: error: %s\n", msg)
	var h hintError
	if errors.As(err, &h) {
		fmt.Fprintf(e.stderr, "secitemctl: hint: %s\n", h.hint)
	}
	return 1
}
