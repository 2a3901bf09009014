package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const testNow = "2026-11-23T12:00:00Z"

// session runs secitemctl commands in-process against one store and
// records a transcript: each command, its output, its errors, its status.
type session struct {
	t          *testing.T
	dir        string
	transcript strings.Builder
}

func newSession(t *testing.T) *session {
	return &session{t: t, dir: t.TempDir()}
}

func (s *session) path(name string) string { return filepath.Join(s.dir, name) }

func (s *session) getenv(k string) string {
	switch k {
	case envDB:
		return s.path("test.keychain")
	case envTestNow:
		return testNow
	case envCheapCost:
		return "1"
	}
	return ""
}

// run runs one command line; stdin is given to --passcode-stdin.
func (s *session) run(stdin string, args ...string) (stdout, stderr string, code int) {
	s.t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: bufio.NewReader(strings.NewReader(stdin)), stdout: &out, stderr: &errb, getenv: s.getenv}
	code = run(args, e)
	stdout, stderr = out.String(), errb.String()
	fmt.Fprintf(&s.transcript, "$ secitemctl %s\n", quote(args))
	if stdin != "" {
		fmt.Fprintf(&s.transcript, "(standard input: %d line%s)\n", strings.Count(stdin, "\n"), plural(strings.Count(stdin, "\n")))
	}
	s.transcript.WriteString(stdout)
	for _, l := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(&s.transcript, "! %s\n", l)
		}
	}
	fmt.Fprintf(&s.transcript, "[exit %d]\n\n", code)
	return stdout, stderr, code
}

// must runs a command that must succeed.
func (s *session) must(stdin string, args ...string) string {
	s.t.Helper()
	out, errs, code := s.run(stdin, args...)
	if code != 0 {
		s.t.Fatalf("secitemctl %s: exit %d: %s", quote(args), code, errs)
	}
	return out
}

func quote(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " {}\"'$") || a == "" {
			out[i] = "'" + a + "'"
		} else {
			out[i] = a
		}
	}
	return strings.Join(out, " ")
}

var (
	refHex    = regexp.MustCompile(`\b(67656e70|696e6574|63657274|6b657973|69646e74)[0-9a-f]{32}\b`)
	refBase64 = regexp.MustCompile(`"(Z2Vuc|aW5ld|Y2Vyd|a2V5c|aWRud)[A-Za-z0-9+/]{22}[A-Za-z0-9+/=]"`)
	tempDir   = regexp.MustCompile(`/tmp/[^ ]*?/(test|other|copy)`)
)

// golden compares the transcript with testdata/golden/<name>.txt, after
// replacing what differs between runs (random persistent references).
var progressFrames = regexp.MustCompile(`(?:\r\w+ \[[= ]{30}\] \d+/\d+)*(\r\w+ \[[= ]{30}\] \d+/\d+)`)

func (s *session) golden(name string) {
	s.t.Helper()
	got := s.transcript.String()
	got = refHex.ReplaceAllString(got, "<$1-ref>")
	got = refBase64.ReplaceAllString(got, `"<ref>"`)
	got = strings.ReplaceAll(got, s.dir, "$DIR")
	// Which intermediate progress frames appear depends on scheduling
	// (TestProgressBarFrames checks them); keep the last of each run.
	got = progressFrames.ReplaceAllString(got, "$1")
	path := filepath.Join("testdata", "golden", name+".txt")
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatalf("%v (run go test -update)", err)
	}
	if string(want) != got {
		s.t.Errorf("transcript differs from %s (run go test -update and review the diff):\n%s", path, diffLines(string(want), got))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want %q\n  got  %q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func fileHash(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func testdataJSON(t *testing.T, file string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "identity", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	return `{"$data":"` + base64.StdEncoding.EncodeToString(blk.Bytes) + `"}`
}

func TestUsageAndErrors(t *testing.T) {
	s := newSession(t)
	s.run("", "help")
	s.run("", "help", "find")
	s.run("", "bogus")
	s.run("")
	s.run("", "find")
	s.run("", "find", "{not json}")
	s.run("", "find", `{"class":"genp","port":1.5}`)
	s.run("", "-o", "yaml", "stats")
	s.run("", "--db", s.path("missing.keychain"), "dump")
	s.golden("usage")
}

func TestFourOperations(t *testing.T) {
	s := newSession(t)
	s.run("", "add", `{"class":"genp","svce":"AYS","acct":"mrgumby","gena":"A","v_Data":{"$data":"b3BlbmRvb3I="},"r_Attributes":true}`)
	s.run("", "find", `{"class":"genp","svce":"AYS","acct":"mrgumby","gena":"SecItemHints"}`)
	s.run("", "add", `{"class":"genp","svce":"AYS","acct":"mrgumby","gena":"SecItemHints","v_Data":{"$data":"b3BlbmRvb3I="}}`)
	s.run("", "find", `{"class":"genp","svce":"AYS","r_Data":true}`)
	s.run("", "find", `{"class":"genp","m_Limit":"m_LimitAll","r_Attributes":true,"r_PersistentRef":true}`)
	s.run("", "update", `{"class":"genp","svce":"AYS"}`, `{"labl":"renamed","v_Data":{"$data":"bmV3"}}`)
	s.run("", "find", `{"class":"genp","labl":"renamed","r_Data":true,"r_Attributes":true}`)
	s.run("", "add", `{"class":"cert","atag":"user1"}`)
	s.run("", "update", `{"class":"genp"}`, `{"accc":"ck"}`)
	s.run("", "delete", `{"class":"genp","svce":"AYS"}`)
	s.run("", "delete", `{"class":"genp","svce":"AYS"}`)
	s.run("", "--trace", "add", `{"class":"inet","srvr":"example.com","ptcl":"htps","port":443,"v_Data":{"$data":"c2VjcmV0"}}`)
	s.run("", "--group", "SKMME9E2Y8.groupA", "add", `{"class":"genp","svce":"token","r_Attributes":true}`)
	s.run("", "--group", "SKMME9E2Y8.groupB", "find", `{"class":"genp","svce":"token"}`)
	s.run("", "--group", "SKMME9E2Y8.groupB", "find", `{"class":"genp","agrp":"SKMME9E2Y8.groupA"}`)
	s.golden("operations")
}

func TestDumpAndInspectionDoNotWrite(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"s","acct":"alice","v_Data":{"$data":"Y2FuYXJ5LXNlY3JldA=="}}`)
	s.must("", "add", `{"class":"inet","srvr":"example.com","acct":"bob","v_Data":{"$data":"cHc="},"binn":{"$data":"bm90ZXM="}}`)
	s.must("", "--group", "other", "add", `{"class":"genp","svce":"elsewhere"}`)
	s.must("", "add", `{"v_Ref":{"$identity":{"certificate":`+testdataJSON(t, "leaf-p384.pem")+`,"privateKey":`+testdataJSON(t, "leaf-p384.key")+`}}}`)
	s.must("", "add", `{"v_Ref":{"$certificate":`+testdataJSON(t, "mouseca.pem")+`}}`)
	s.must("", "add", `{"class":"cert","v_Data":`+testdataJSON(t, "leaf-rsa.pem")+`,"labl":"raw bytes"}`)
	s.must("", "add", `{"v_Ref":{"$privateKey":`+testdataJSON(t, "p521.key")+`},"labl":"lonely key"}`)
	before := fileHash(t, s.getenv(envDB))
	s.transcript.Reset()
	s.run("", "dump", "--class", "genp")
	s.run("", "dump", "--class", "inet", "--show-secrets")
	s.run("", "dump", "--class", "genp", "-o", "json")
	s.run("", "--group", "other", "dump", "--class", "genp")
	s.run("", "identities")
	s.run("", "identities", "-o", "json")
	s.run("", "asn1", "--attr", "issr", `{"class":"cert","labl":"MouseCA"}`)
	s.run("", "asn1", "301f3110300e06035504030c074d6f7573654341310b3009060355040613024742")
	s.run("", "asn1", "zz")
	s.run("", "asn1", "3005")
	s.run("", "check")
	s.run("", "check", "-o", "json")
	s.run("", "stats")
	s.golden("inspection")
	if after := fileHash(t, s.getenv(envDB)); after != before {
		t.Fatal("an inspection command modified the store")
	}
	if strings.Contains(s.transcript.String(), "canary-secret") || strings.Contains(s.transcript.String(), "Y2FuYXJ5LXNlY3JldA") {
		t.Fatal("a secret was printed without --show-secrets")
	}
}

func TestCheckNamesDamage(t *testing.T) {
	s := newSession(t)
	out := s.must("", "add", `{"class":"genp","svce":"s","v_Data":{"$data":"cHc="},"r_PersistentRef":true}`)
	s.must("", "add", `{"class":"genp","svce":"t"}`)
	ref, _ := base64.StdEncoding.DecodeString(strings.Trim(strings.TrimSpace(strings.Split(out, ":")[1]), ` "}`+"\n"))
	st, err := store.Open(s.getenv(envDB), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.RawRecord(ref)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	st.PutRawRecord(ref, raw)
	st.Close()
	s.transcript.Reset()
	s.run("", "check")
	s.golden("check-damage")
}

func TestPasscodeCommands(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"s","v_Data":{"$data":"cHc="}}`)
	s.run("", "unlock-test")
	s.run("1234\n", "--passcode-stdin", "passcode", "set")
	s.run("", "find", `{"class":"genp","svce":"s"}`) // no passcode given, no terminal
	s.run("0000\n", "--passcode-stdin", "find", `{"class":"genp","svce":"s"}`)
	s.run("1234\n", "--passcode-stdin", "find", `{"class":"genp","svce":"s","r_Data":true}`)
	s.run("0000\n", "--passcode-stdin", "unlock-test")
	s.run("1234\n", "--passcode-stdin", "unlock-test")
	s.run("", "delete", `{"class":"genp","svce":"nothing"}`) // delete needs no passcode
	s.run("1234\n5678\n", "--passcode-stdin", "passcode", "change")
	s.run("1234\n", "--passcode-stdin", "unlock-test")
	s.run("5678\n", "--passcode-stdin", "passcode", "remove")
	s.run("", "find", `{"class":"genp","svce":"s","r_Data":true}`)
	s.run("\n", "--passcode-stdin", "passcode", "set")
	s.golden("passcode")
}

func TestBackupCommands(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"s","v_Data":{"$data":"cHc="}}`)
	s.must("", "add", `{"class":"genp","svce":"device-only","pdmn":"dku"}`)
	backup := s.path("keychain.backup")
	s.run("hunter2\n", "--passcode-stdin", "backup", backup)
	fi, err := os.Stat(backup)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	s.run("hunter2\n", "--passcode-stdin", "backup", backup) // exists: refused
	other := s.path("other.keychain")
	s.run("wrong\n", "--passcode-stdin", "--db", other, "restore", backup)
	s.run("hunter2\n", "--passcode-stdin", "--db", other, "restore", backup)
	s.run("", "--db", other, "dump")
	s.run("hunter2\n", "--passcode-stdin", "--db", other, "restore", backup)
	b, _ := os.ReadFile(backup)
	b[len(b)-5] ^= 1
	tampered := s.path("tampered.backup")
	os.WriteFile(tampered, b, 0o600)
	s.run("hunter2\n", "--passcode-stdin", "--db", s.path("third.keychain"), "restore", tampered)
	s.golden("backup")
	s.transcript.Reset()
	for i := 0; i < 250; i++ {
		s.must("", "add", fmt.Sprintf(`{"class":"genp","svce":"bulk","acct":"%d"}`, i))
	}
	s.transcript.Reset() // keep the 250 adds out of the golden file
	s.run("hunter2\n", "--passcode-stdin", "backup", "--progress", s.path("second.backup"))
	s.golden("backup-progress")
	if _, err := os.Stat(s.path(".second.backup.partial")); err == nil {
		t.Fatal("a partial backup file was left behind")
	}
}

// A store held by another opener is reported within a second, not waited
// for.
func TestStoreInUse(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"s"}`)
	db, err := secitem.Open(s.getenv(envDB), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	_, errs, code := s.run("", "dump")
	if code != 1 || !strings.Contains(errs, "already open") || time.Since(start) > time.Second {
		t.Fatalf("dump of a store in use: exit %d, %q after %v", code, errs, time.Since(start))
	}
}

// A device secret that is not the store's opens nothing.
func TestWrongDevice(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"s"}`)
	os.WriteFile(s.getenv(envDB)+".device", bytes.Repeat([]byte{1}, protect.SecretSize), 0o600)
	_, errs, code := s.run("", "dump")
	if code != 1 || !strings.Contains(errs, "errSecAuthFailed") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

// TestREADMEWalkthrough runs the walkthrough in README.md and compares
// every command's output with the README's.
func TestREADMEWalkthrough(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "<!-- walkthrough -->")
	end := strings.Index(text, "<!-- /walkthrough -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no walkthrough block")
	}
	lines := strings.Split(text[start:end], "\n")
	s := newSession(t)
	var cmd []string
	var stdin string
	var want []string
	ran := 0
	flush := func() {
		if cmd == nil {
			return
		}
		out, errs, _ := s.run(stdin, cmd...)
		got := strings.TrimRight(normalizeREADME(out+errs), "\n")
		if w := strings.TrimRight(strings.Join(want, "\n"), "\n"); got != w {
			t.Errorf("README: secitemctl %s\n got:\n%s\nwant:\n%s", quote(cmd), got, w)
		}
		ran++
		cmd, want = nil, nil
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "$ ") {
			if cmd != nil && !strings.HasPrefix(l, "```") {
				want = append(want, l)
			}
			continue
		}
		flush()
		line := strings.TrimPrefix(l, "$ ")
		stdin = ""
		if strings.HasPrefix(line, "echo ") {
			parts := strings.SplitN(strings.TrimPrefix(line, "echo "), " | ", 2)
			stdin, line = parts[0]+"\n", parts[1]
		}
		words := shellWords(line)
		if len(words) == 0 || words[0] != "secitemctl" {
			continue // go install, export: the session sets SECITEM_DB itself
		}
		cmd = words[1:]
	}
	flush()
	if ran < 5 {
		t.Fatalf("only %d walkthrough commands ran", ran)
	}
}

func normalizeREADME(s string) string {
	s = refHex.ReplaceAllStringFunc(s, func(m string) string {
		return "<" + map[string]string{"67656e70": "genp", "696e6574": "inet", "63657274": "cert", "6b657973": "keys", "69646e74": "idnt"}[m[:8]] + "-ref>"
	})
	return s
}

// shellWords splits a command line with single-quoted words.
func shellWords(line string) []string {
	var out []string
	var cur strings.Builder
	in, any := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			in, any = !in, true
		case r == ' ' && !in:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

func TestPitfallsCommand(t *testing.T) {
	s := newSession(t)
	s.run("", "pitfalls", "list")
	s.run("", "pitfalls", "run", "match-limit-defaults")
	s.run("", "pitfalls", "run", "9", "--flavor", "file-based")
	s.run("", "pitfalls", "run", "no-such-pitfall")
	s.run("", "pitfalls", "frobnicate")
	s.golden("pitfalls")
	out, _, code := s.run("", "pitfalls", "run", "all")
	if code != 0 || strings.Count(out, "Lesson: ") != 14 {
		t.Fatalf("run all: exit %d, %d lessons", code, strings.Count(out, "Lesson: "))
	}
}

// The progress bar draws a frame for the first count past each multiple of
// 100 (the library may skip counts) and always the last.
func TestProgressBarFrames(t *testing.T) {
	var out bytes.Buffer
	bar := progressBar(&env{stderr: &out, stderrIsTTY: true}, "backup")
	for _, n := range []int{1, 57, 99, 137, 150, 199, 200, 251, 252} {
		bar(n, 252)
	}
	frames := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\r")[1:]
	var counts []string
	for _, f := range frames {
		counts = append(counts, f[strings.LastIndex(f, " ")+1:])
	}
	if got, want := strings.Join(counts, ","), "137/252,200/252,252/252"; got != want {
		t.Errorf("frames at %s, want %s", got, want)
	}
}

// Restore's counter (a backup does not say how many items it holds) draws
// the first count, the first past each multiple of 100, and the last; and
// nothing at all when standard error is not a terminal and --progress was
// not given.
func TestProgressCounterFrames(t *testing.T) {
	saved := progressOpts.progress
	progressOpts.progress = false
	defer func() { progressOpts.progress = saved }()
	var out bytes.Buffer
	tick, finish := progressCounter(&env{stderr: &out, stderrIsTTY: true}, "restore")
	for _, n := range []int{1, 57, 99, 137, 150, 251, 252} {
		tick(n)
	}
	finish()
	if got, want := out.String(), "\rrestore 1 item\rrestore 137 items\rrestore 251 items\rrestore 252 items\n"; got != want {
		t.Errorf("frames %q, want %q", got, want)
	}
	out.Reset()
	tick, finish = progressCounter(&env{stderr: &out}, "restore")
	if tick != nil {
		t.Error("a counter without a terminal")
	}
	finish()
	if out.Len() != 0 {
		t.Errorf("drew %q without a terminal", out.String())
	}
}

// explain prints why each item does or does not match, as a table and as
// JSON; find points to it when nothing matches.
func TestExplainCommand(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"AYS","acct":"mrgumby","gena":"A","v_Data":{"$data":"b3BlbmRvb3I="}}`)
	s.must("", "add", `{"class":"genp","svce":"AYS","acct":"other","sync":1}`)
	s.must("", "--group", "groupA", "add", `{"class":"genp","svce":"AYS","acct":"elsewhere"}`)
	s.transcript.Reset()
	q := `{"class":"genp","svce":"AYS","acct":"mrgumby","gena":"SecItemHints"}`
	s.run("", "find", q)
	s.run("", "explain", q)
	s.run("", "explain", "-o", "json", q)
	s.run("", "--group", "groupB", "explain", `{"class":"genp","svce":"AYS"}`)
	s.run("", "explain", `{"class":"nope"}`)
	s.run("", "explain", "--op", "update", `{"class":"genp","svce":"AYS","r_Data":true}`)
	s.run("", "explain", "--op", "delete", `{"class":"genp","svce":"AYS"}`)
	s.run("", "explain", "--op", "add", `{"class":"genp"}`)
	s.golden("explain")
	if strings.Contains(s.transcript.String(), "opendoor") || strings.Contains(s.transcript.String(), "b3BlbmRvb3I") {
		t.Fatal("explain printed a secret")
	}
}

// sync runs secitemctl-sync with the store and the sync flags; without it
// on PATH, it says how to install it.
func TestSyncDelegates(t *testing.T) {
	s := newSession(t)
	t.Setenv("PATH", t.TempDir())
	_, stderr, code := s.run("", "sync", "status", "--sync-group", "team")
	if code == 0 || !strings.Contains(stderr, "go -C etcdsync install ./cmd/secitemctl-sync") {
		t.Fatalf("without the program: %d %s", code, stderr)
	}
	bin := t.TempDir()
	script := "#!/bin/sh\necho \"$@\"\nread line\necho \"stdin: $line\"\n"
	if err := os.WriteFile(filepath.Join(bin, "secitemctl-sync"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	stdout, stderr, code := s.run("team secret\n", "sync", "join", "--sync-group", "team", "--etcd", "http://e:2379")
	want := "--db " + s.path("test.keychain") + " --group team --endpoints http://e:2379 join\nstdin: team secret\n"
	if code != 0 || stdout != want {
		t.Fatalf("delegated as %q (code %d, %s), want %q", stdout, code, stderr, want)
	}
}

// asn1 --attr takes any query: one that returns a list (m_LimitAll) is
// answered with an error line and exit 1 when it matches several items,
// and printed when it matches one; never a crash.
func TestASN1AttrWithLimitAll(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"v_Ref":{"$certificate":`+testdataJSON(t, "mouseca.pem")+`}}`)
	out := s.must("", "asn1", "--attr", "issr", `{"class":"cert","m_Limit":"m_LimitAll"}`)
	if !strings.Contains(out, "MouseCA") {
		t.Fatalf("asn1 --attr with m_LimitAll and one match printed %q", out)
	}
	s.must("", "add", `{"class":"cert","v_Data":`+testdataJSON(t, "leaf-rsa.pem")+`,"labl":"raw bytes"}`)
	_, errs, code := s.run("", "asn1", "--attr", "issr", `{"class":"cert","m_Limit":"m_LimitAll"}`)
	if code != 1 || !strings.Contains(errs, "matches 2 items") {
		t.Fatalf("asn1 --attr over two matches: exit %d, %q", code, errs)
	}
}

// --app-id makes the caller's application identifier its access group
// (the last in its list, as on the device): an item added with only
// --app-id lands in that group and is invisible to another caller.
func TestAppIDFlag(t *testing.T) {
	s := newSession(t)
	s.must("", "--app-id", "TEAM.com.example.app", "add", `{"class":"genp","svce":"s","acct":"a"}`)
	out := s.must("", "--app-id", "TEAM.com.example.app", "-o", "json", "find", `{"class":"genp","svce":"s","r_Attributes":true}`)
	if !strings.Contains(out, `"agrp": "TEAM.com.example.app"`) {
		t.Fatalf("the item is not in the application's group: %s", out)
	}
	if _, _, code := s.run("", "--app-id", "TEAM.com.example.other", "find", `{"class":"genp","svce":"s"}`); code != 1 {
		t.Fatalf("another application found the item (exit %d)", code)
	}
}

// stats -o json is one JSON object with the item counts by class and
// protection class and the file figures.
func TestStatsJSON(t *testing.T) {
	s := newSession(t)
	s.must("", "add", `{"class":"genp","svce":"s","acct":"a"}`)
	s.must("", "add", `{"class":"inet","srvr":"example.com","pdmn":"ck"}`)
	out := s.must("", "-o", "json", "stats")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("stats -o json is not JSON: %v\n%s", err, out)
	}
	items, _ := v["items"].(map[string]any)
	genp, _ := items["genp"].(map[string]any)
	inet, _ := items["inet"].(map[string]any)
	if genp["ak"] != float64(1) || inet["ck"] != float64(1) {
		t.Fatalf("item counts: %v", v["items"])
	}
	if fs, ok := v["fileSize"].(float64); !ok || fs <= 0 {
		t.Fatalf("file size: %v", v["fileSize"])
	}
	if g, _ := v["groups"].(map[string]any); g["secitemdb.default"] != float64(2) {
		t.Fatalf("items by group: %v", v["groups"])
	}
	// Two items' postings (lookup key and indexed attributes) are in the
	// posting log; a fresh store merges at the minimum.
	if n, _ := v["loggedPostings"].(float64); n < 4 {
		t.Fatalf("logged postings: %v", v["loggedPostings"])
	}
	if m, _ := v["mergeAt"].(float64); m != 8192 {
		t.Fatalf("merge limit: %v", v["mergeAt"])
	}
}

// check names damage to the file itself, not only to a record: a
// truncated file, both meta pages broken, a zeroed page, a flipped byte in
// the live root page. Each exits non-zero and says what is wrong.
func TestCheckNamesFileDamage(t *testing.T) {
	for _, kind := range []string{"truncated", "meta pages", "zeroed root page", "root page byte"} {
		t.Run(kind, func(t *testing.T) {
			s := newSession(t)
			for i := 0; i < 40; i++ {
				s.must("", "add", fmt.Sprintf(`{"class":"genp","svce":"s","acct":"a%d","v_Data":{"$data":"cHc="}}`, i))
			}
			path := s.getenv(envDB)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ps := os.Getpagesize()
			// The live meta page (the higher transaction ID) names the root.
			meta := func(i int) (root, txid uint64) {
				m := b[i*ps+16:]
				return binary.LittleEndian.Uint64(m[16:]), binary.LittleEndian.Uint64(m[48:])
			}
			root, tx0 := meta(0)
			if r1, tx1 := meta(1); tx1 > tx0 {
				root = r1
			}
			switch kind {
			case "truncated":
				b = b[:len(b)/2]
			case "meta pages":
				clear(b[16:64])
				clear(b[ps+16 : ps+64])
			case "zeroed root page":
				clear(b[int(root)*ps : int(root+1)*ps])
			case "root page byte":
				b[int(root)*ps+8] ^= 0x40 // its flags
			}
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			out, errs, code := s.run("", "check")
			all := out + errs
			if code == 0 || !(strings.Contains(all, "damaged") || strings.Contains(all, "problem")) {
				t.Fatalf("check on a file with %s damage: exit %d\n%s", kind, code, all)
			}
		})
	}
}

// The explain hint quotes the query for the shell, quotes inside it too.
func TestExplainHintQuotesForTheShell(t *testing.T) {
	s := newSession(t)
	_, errs, code := s.run("", "find", `{"class":"genp","svce":"it's"}`)
	want := `secitemctl explain '{"class":"genp","svce":"it'\''s"}'`
	if code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("hint: exit %d, %q; want it to contain %s", code, errs, want)
	}
}
