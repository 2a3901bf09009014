// Package pitfalls reproduces, step by step, the keychain behaviours that
// surprise developers (the project's docs/pitfalls.md): each Pitfall runs a
// scenario against a fresh store, narrates every call with its dictionary
// and status, and ends with the lesson and the right way to write the code.
//
// The same scenarios back the package's examples, `secitemctl pitfalls
// run`, and (in property_test) properties that state each naive belief and
// find a counterexample to it.
package pitfalls

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

// A Pitfall is one surprising keychain behaviour and a scenario showing it.
type Pitfall struct {
	Number  int
	Name    string // e.g. "query-vs-uniqueness"
	Title   string
	Summary string // one line
	Lesson  string
	Right   string // the right way to write the code
	// Differs is set when the file-based keychain (the macOS shim)
	// behaves differently; Run then shows both flavors.
	Differs bool

	scenario func(s *Session)
}

// All returns the pitfalls in order.
func All() []*Pitfall { return all }

// Find returns the pitfall with the given name or number.
func Find(name string) (*Pitfall, bool) {
	n, _ := strconv.Atoi(name)
	for _, p := range all {
		if p.Name == name || p.Number == n {
			return p, true
		}
	}
	return nil, false
}

// RunOptions configure Run.
type RunOptions struct {
	// Flavors to run; nil means data protection, plus the file-based
	// flavor when the pitfall differs there.
	Flavors []secitem.Flavor
	// Trace adds the library's call trace (Options.Logger) after each
	// call.
	Trace bool
}

// Run plays the pitfall's scenario on a fresh, temporary store for each
// flavor, writing the narrative to w.
func (p *Pitfall) Run(w io.Writer, opts RunOptions) error {
	flavors := opts.Flavors
	if flavors == nil {
		flavors = []secitem.Flavor{secitem.DataProtection}
		if p.Differs {
			flavors = append(flavors, secitem.FileBased)
		}
	}
	fmt.Fprintf(w, "Pitfall %d: %s\n", p.Number, p.Title)
	for _, f := range flavors {
		if len(flavors) > 1 || f == secitem.FileBased {
			fmt.Fprintf(w, "\n-- %s --\n", flavorName(f))
		}
		if err := p.play(w, f, opts.Trace); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nLesson: %s\nRight way: %s\n", p.Lesson, p.Right)
	return nil
}

func flavorName(f secitem.Flavor) string {
	if f == secitem.FileBased {
		return "file-based keychain (macOS shim)"
	}
	return "data protection keychain"
}

func (p *Pitfall) play(w io.Writer, flavor secitem.Flavor, trace bool) (err error) {
	dir, err := os.MkdirTemp("", "secitemdb-pitfall")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &Session{w: w, flavor: flavor, dir: dir, enclave: protect.NewStaticDevice(bytes.Repeat([]byte{0x5e}, protect.SecretSize))}
	if trace {
		s.trace = &bytes.Buffer{}
	}
	if err := s.open(); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				err = f.err
				return
			}
			panic(r)
		}
	}()
	defer s.db.Close()
	p.scenario(s)
	return nil
}

// failure aborts a scenario whose set-up failed.
type failure struct{ err error }

// prefHex matches a persistent reference in a formatted dictionary: its
// random bytes would make narratives differ between runs.
var prefHex = regexp.MustCompile(`v_PersistentRef: <[0-9a-f]{40}>`)

// Session is a scenario's store and narrator.
type Session struct {
	w       io.Writer
	flavor  secitem.Flavor
	dir     string
	db      *secitem.DB
	trace   *bytes.Buffer
	enclave *protect.StaticDevice
}

// Scenarios run at a fixed time, with a fixed device secret and a cheap
// passcode cost, so their narratives are the same on every run.
var scenarioTime = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

func (s *Session) open() error {
	opts := &secitem.Options{
		Flavor:        s.flavor,
		Device:        protect.NewStaticDevice(bytes.Repeat([]byte{0xde}, protect.SecretSize)),
		SecureEnclave: s.enclave,
		Now:           func() time.Time { return scenarioTime },
		PasscodeCost:  &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1},
	}
	if s.trace != nil {
		opts.Logger = slog.New(slog.NewTextHandler(s.trace, &slog.HandlerOptions{ReplaceAttr: func(g []string, a slog.Attr) slog.Attr {
			if len(g) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == "elapsed" || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		}}))
	}
	db, err := secitem.Open(s.dir+"/pitfall.keychain", opts)
	if err != nil {
		return err
	}
	s.db = db
	return nil
}

// Say narrates.
func (s *Session) Say(format string, args ...any) {
	fmt.Fprintf(s.w, format+"\n", args...)
}

// must aborts the scenario when a set-up step fails.
func (s *Session) must(err error) {
	if err != nil {
		panic(failure{err})
	}
}

// Caller is an app with entitlements, for scenarios with several.
type Caller struct {
	name string
	e    secitem.Entitlements
	c    *secitem.Client
}

// App returns a caller with the given keychain-access-groups.
func (s *Session) App(name string, groups ...string) *Caller {
	e := secitem.Entitlements{KeychainAccessGroups: groups}
	return &Caller{name: name, e: e, c: s.db.Client(e)}
}

func (s *Session) call(who *Caller, op string, dicts []secitem.Dict, do func() (any, error)) (any, error) {
	var parts []string
	for _, d := range dicts {
		parts = append(parts, prefHex.ReplaceAllString(secitem.FormatDict(d), "v_PersistentRef: <20-byte reference>"))
	}
	prefix := ""
	if who != nil {
		prefix = "[" + who.name + "] "
	}
	fmt.Fprintf(s.w, "%s%s(%s)\n", prefix, op, strings.Join(parts, ", "))
	r, err := do()
	st := secitem.StatusOf(err)
	line := fmt.Sprintf("  = %s (%d)", statusName(st), st)
	if err == nil && r != nil {
		line += ", result " + secitem.Shape(r)
	}
	fmt.Fprintln(s.w, line)
	s.flushTrace()
	return r, err
}

// flushTrace writes the trace lines the last calls produced.
func (s *Session) flushTrace() {
	if s.trace == nil {
		return
	}
	for _, l := range strings.Split(strings.TrimSpace(s.trace.String()), "\n") {
		if l != "" {
			fmt.Fprintf(s.w, "  trace: %s\n", l)
		}
	}
	s.trace.Reset()
}

func statusName(st secitem.Status) string {
	if st == 0 {
		return "errSecSuccess"
	}
	return st.Name()
}

func (s *Session) client(who *Caller) interface {
	Add(secitem.Dict) (any, error)
	CopyMatching(secitem.Dict) (any, error)
	Update(q, a secitem.Dict) error
	Delete(secitem.Dict) error
} {
	if who != nil {
		return who.c
	}
	return s.db
}

// Add calls SecItemAdd and narrates it.
func (s *Session) Add(who *Caller, d secitem.Dict) (any, error) {
	return s.call(who, "SecItemAdd", []secitem.Dict{d}, func() (any, error) { return s.client(who).Add(d) })
}

// Find calls SecItemCopyMatching and narrates it.
func (s *Session) Find(who *Caller, d secitem.Dict) (any, error) {
	return s.call(who, "SecItemCopyMatching", []secitem.Dict{d}, func() (any, error) { return s.client(who).CopyMatching(d) })
}

// Explain narrates why a query does not match: secitem's Explain for a
// caller, or with operator set, the operator's view of every item
// (ExplainAs) for that caller.
func (s *Session) Explain(who *Caller, operator bool, d secitem.Dict) {
	var ex *secitem.Explanation
	var err error
	switch {
	case operator && who != nil:
		ex, err = s.db.ExplainAs(who.e, d)
	case who != nil:
		ex, err = who.c.Explain(d)
	default:
		ex, err = s.db.Explain(d)
	}
	prefix := ""
	if who != nil {
		prefix = "[" + who.name + "] "
	}
	fmt.Fprintf(s.w, "%sexplain(%s)\n", prefix, secitem.FormatDict(d))
	if err != nil {
		fmt.Fprintf(s.w, "  = %s (%d)\n", statusName(secitem.StatusOf(err)), secitem.StatusOf(err))
		return
	}
	fmt.Fprintf(s.w, "  %d of %d items match\n", ex.Matches, len(ex.Items))
	for _, it := range ex.Items {
		if it.Matches {
			continue
		}
		fmt.Fprintf(s.w, "  miss %s\n", it.Summary)
		for _, r := range it.Reasons {
			fmt.Fprintf(s.w, "    - %s\n", r.Text)
		}
		for _, n := range it.Notes {
			fmt.Fprintf(s.w, "    note: %s\n", n)
		}
	}
	s.flushTrace()
}

// Update calls SecItemUpdate and narrates it.
func (s *Session) Update(who *Caller, q, a secitem.Dict) error {
	_, err := s.call(who, "SecItemUpdate", []secitem.Dict{q, a}, func() (any, error) { return nil, s.client(who).Update(q, a) })
	return err
}

// Delete calls SecItemDelete and narrates it.
func (s *Session) Delete(who *Caller, d secitem.Dict) error {
	_, err := s.call(who, "SecItemDelete", []secitem.Dict{d}, func() (any, error) { return nil, s.client(who).Delete(d) })
	return err
}

// Lock, Unlock and SetPasscode narrate the keybag's transitions.
func (s *Session) Lock() {
	s.must(s.db.Lock())
	s.Say("(the device locks: state %v)", s.db.State())
	s.flushTrace()
}

func (s *Session) Unlock(passcode string) {
	s.must(s.db.Unlock([]byte(passcode)))
	s.Say("(the user unlocks the device: state %v)", s.db.State())
	s.flushTrace()
}

func (s *Session) SetPasscode(passcode string) {
	s.must(s.db.SetPasscode(nil, []byte(passcode)))
	s.Say("(a device passcode is set)")
	s.flushTrace()
}

// Flavor returns the session's flavor.
func (s *Session) Flavor() secitem.Flavor { return s.flavor }
