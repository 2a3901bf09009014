package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/secitemdb/secitemdb/secitem"
)

// cmdCheck verifies the file and every item, prints counts per class and
// protection class, and names every problem; the exit status is 1 when
// there is one.
func cmdCheck(e *env, g *globals, args []string) error {
	db, err := openStore(e, g, readOnly, true)
	if err != nil {
		return err
	}
	defer db.Close()
	rep, err := db.Check()
	if err != nil {
		return err
	}
	if g.output == "json" {
		problems := rep.Problems
		if problems == nil {
			problems = []string{}
		}
		items := map[string]any{}
		for c, m := range rep.Items {
			cm := map[string]any{}
			for p, n := range m {
				cm[p] = int64(n)
			}
			items[c] = cm
		}
		if err := printJSON(e, map[string]any{"ok": rep.OK(), "items": items, "locked": int64(rep.Locked), "problems": toAny(problems)}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		total := 0
		for _, c := range sortedKeys(rep.Items) {
			for _, p := range sortedKeys(rep.Items[c]) {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", c, p, rep.Items[c][p])
				total += rep.Items[c][p]
			}
		}
		tw.Flush()
		fmt.Fprintf(e.stdout, "%d item%s opened and authenticated", total, plural(total))
		if rep.Locked > 0 {
			fmt.Fprintf(e.stdout, ", %d locked (structure checked only)", rep.Locked)
		}
		fmt.Fprintln(e.stdout)
		for _, p := range rep.Problems {
			fmt.Fprintf(e.stdout, "problem: %s\n", p)
		}
		if rep.OK() {
			fmt.Fprintln(e.stdout, "ok")
		}
	}
	if !rep.OK() {
		fmt.Fprintf(e.stderr, "secitemctl: error: %d problem%s found\n", len(rep.Problems), plural(len(rep.Problems)))
		return exitError{}
	}
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cmdStats prints counts of items per class, protection class and access
// group, and the file's size and free pages.
func cmdStats(e *env, g *globals, args []string) error {
	db, err := openStore(e, g, readOnly, true)
	if err != nil {
		return err
	}
	defer db.Close()
	st, err := db.Stats()
	if err != nil {
		return err
	}
	if g.output == "json" {
		items := map[string]any{}
		for c, m := range st.Items {
			cm := map[string]any{}
			for p, n := range m {
				cm[p] = int64(n)
			}
			items[c] = cm
		}
		groups := map[string]any{}
		for k, n := range st.Groups {
			groups[k] = int64(n)
		}
		return printJSON(e, map[string]any{"fileSize": st.FileSize, "pageSize": int64(st.PageSize), "freePages": int64(st.FreePages),
			"pendingPages": int64(st.PendingPages), "items": items, "groups": groups, "unreadable": int64(st.Unreadable),
			"loggedPostings": int64(st.LoggedPostings), "mergeAt": int64(st.MergeAt),
			"lookupCacheEntries": int64(st.LookupCacheEntries), "lookupCacheBytes": st.LookupCacheBytes})
	}
	fmt.Fprintf(e.stdout, "file: %d bytes, %d-byte pages, %d free, %d pending\n", st.FileSize, st.PageSize, st.FreePages, st.PendingPages)
	fmt.Fprintf(e.stdout, "posting log: %d postings not yet in the index (merged past %d)\n", st.LoggedPostings, st.MergeAt)
	fmt.Fprintf(e.stdout, "lookup cache: %d entries, %d bytes (a handle with the default limit, as sized at Open)\n", st.LookupCacheEntries, st.LookupCacheBytes)
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "class\tprotection\titems")
	for _, c := range sortedKeys(st.Items) {
		for _, p := range sortedKeys(st.Items[c]) {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", c, p, st.Items[c][p])
		}
	}
	tw.Flush()
	fmt.Fprintln(tw, "access group\titems")
	for _, gname := range sortedKeys(st.Groups) {
		fmt.Fprintf(tw, "%s\t%d\n", gname, st.Groups[gname])
	}
	if st.Unreadable > 0 {
		fmt.Fprintf(tw, "(unknown: class key unavailable)\t%d\n", st.Unreadable)
	}
	return tw.Flush()
}

// cmdPasscode sets, changes or removes the passcode. Passcodes come from
// standard input with --passcode-stdin (set: new; change: old, new;
// remove: old), else from terminal prompts (a new passcode twice).
func cmdPasscode(e *env, g *globals, args []string) error {
	var old, new []byte
	var err error
	switch args[0] {
	case "set":
		new, err = newPasscode(e, g)
	case "change":
		if old, err = readSecret(e, g, "current passcode: "); err == nil {
			new, err = newPasscode(e, g)
		}
	case "remove":
		old, err = readSecret(e, g, "current passcode: ")
	default:
		return usageErr("usage: secitemctl passcode set|change|remove")
	}
	if err != nil {
		return err
	}
	defer clear(old)
	defer clear(new)
	db, err := openStore(e, g, readWrite, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetPasscode(old, new); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "passcode %s\n", map[string]string{"set": "set", "change": "changed", "remove": "removed"}[args[0]])
	return nil
}

func newPasscode(e *env, g *globals) ([]byte, error) {
	p, err := readSecret(e, g, "new passcode: ")
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, usageErr("the new passcode is empty (use `passcode remove` to remove it)")
	}
	if !g.passStdin {
		again, err := readSecret(e, g, "new passcode again: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, again) {
			return nil, usageErr("the passcodes differ")
		}
	}
	return p, nil
}

// cmdUnlockTest checks a passcode as Unlock does: the attempt counts
// toward throttling.
func cmdUnlockTest(e *env, g *globals, args []string) error {
	db, err := openStore(e, g, readWrite, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if db.State() != secitem.BeforeFirstUnlock {
		fmt.Fprintln(e.stdout, "no passcode is set")
		return nil
	}
	p, err := readSecret(e, g, "passcode: ")
	if err != nil {
		return err
	}
	defer clear(p)
	if err := db.Unlock(p); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "passcode accepted")
	return nil
}

var progressOpts struct{ progress bool }

func progressFlags(fs *flag.FlagSet) {
	fs.BoolVar(&progressOpts.progress, "progress", false, "show progress on standard error (the default when it is a terminal)")
}

// progressBar draws "backup [=====>    ] 1200/5000" on standard error for
// stores of more than a few hundred items: a frame each time the count
// passes a multiple of 100, and the final one. The library may skip
// counts when drawing is slower than the work, so a frame is drawn for
// the first count past each multiple rather than for the multiple itself.
func progressBar(e *env, what string) func(done, total int) {
	if !progressOpts.progress && !e.stderrIsTTY {
		return nil
	}
	drawn := 0
	return func(done, total int) {
		if total < 200 && !progressOpts.progress {
			return
		}
		const width = 30
		if done/100 == drawn/100 && done != total {
			return
		}
		drawn = done
		filled := 0
		if total > 0 {
			filled = min(width, width*done/total)
		}
		bar := bytes.Repeat([]byte{'='}, filled)
		fmt.Fprintf(e.stderr, "\r%s [%-30s] %d/%d", what, bar, done, total)
		if done >= total {
			fmt.Fprintln(e.stderr)
		}
	}
}

// progressCounter draws "restore 1200 items" on standard error, for work
// whose total is not known in advance (a backup stream does not say how
// many items it holds): a frame each time the count passes a multiple of
// 100. finish ends the line if anything was drawn. tick is nil when no
// progress is shown.
func progressCounter(e *env, what string) (tick func(done int), finish func()) {
	if !progressOpts.progress && !e.stderrIsTTY {
		return nil, func() {}
	}
	drawn, last := 0, 0
	draw := func(n int) { fmt.Fprintf(e.stderr, "\r%s %d item%s", what, n, plural(n)) }
	tick = func(done int) {
		last = done
		if drawn > 0 && done/100 == drawn/100 {
			return
		}
		drawn = max(done, 1)
		draw(done)
	}
	finish = func() {
		if drawn > 0 {
			draw(last)
			fmt.Fprintln(e.stderr)
		}
	}
	return tick, finish
}

// cmdBackup writes a portable backup to FILE, created 0600 and only if it
// does not exist. The file appears only when the backup is complete.
func cmdBackup(e *env, g *globals, args []string) error {
	path := args[0]
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists", path)
	}
	db, err := openStore(e, g, readWrite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	password, err := readSecret(e, g, "backup password: ")
	if err != nil {
		return err
	}
	defer clear(password)
	if len(password) == 0 {
		return usageErr("the backup password is empty")
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".partial")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	n, err := db.Backup(f, password, progressBar(e, "backup"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists", path)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "%d item%s backed up to %s\n", n, plural(n), path)
	return nil
}

// cmdRestore adds the items of a backup; items whose primary key is taken
// are skipped, and a damaged backup restores nothing.
func cmdRestore(e *env, g *globals, args []string) error {
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	db, err := openStore(e, g, readWrite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	password, err := readSecret(e, g, "backup password: ")
	if err != nil {
		return err
	}
	defer clear(password)
	tick, finish := progressCounter(e, "restore")
	res, err := db.Restore(f, password, tick)
	finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d item%s restored, %d skipped (already present)\n", res.Restored, plural(res.Restored), res.Skipped)
	return nil
}
