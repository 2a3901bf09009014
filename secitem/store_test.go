package secitem_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/secitemdb/secitemdb/secitem"
)

func TestTraceRedactsSecrets(t *testing.T) {
	var log bytes.Buffer
	db := openTest(t, &Options{Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	secret := "canary-secret-7f3a9c"
	mustAdd(t, db, genp(AttrService, "svc", AttrAccount, "alice", ValueData, []byte(secret)))
	if _, err := db.CopyMatching(genp(AttrService, "svc", ReturnData, true)); err != nil {
		t.Fatal(err)
	}
	_, _ = db.CopyMatching(genp(AttrService, "missing"))
	_ = db.Update(genp(AttrService, "svc"), Dict{ValueData: []byte(secret + "2")})
	out := log.String()
	if strings.Contains(out, secret) || strings.Contains(out, hex.EncodeToString([]byte(secret))) {
		t.Fatalf("the trace leaks the secret:\n%s", out)
	}
	for _, want := range []string{
		`"op":"SecItemAdd"`, `"in":"{acct: \"alice\", class: \"genp\", svce: \"svc\", v_Data: <redacted 20 bytes>}"`,
		`"op":"SecItemCopyMatching"`, `"result":"[]byte(20)"`, `"status":"errSecSuccess"`,
		`"status":"errSecItemNotFound"`, `"code":-25300`, `"op":"SecItemUpdate"`, `"attributesToUpdate":"{v_Data: <redacted 21 bytes>}"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %s:\n%s", want, out)
		}
	}
}

func TestOpenTwiceInProcessFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Open(path, &Options{Device: testDevice()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = Open(path, &Options{Device: testDevice(), Timeout: 5 * time.Second})
	wantStatus(t, err, ErrNotAvailable)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("second Open took %v", d)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, &Options{Device: testDevice()})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	db.Close()
}

// holdEnv makes the test binary a child that holds a store open.
const holdEnv = "SECITEM_TEST_HOLD_STORE"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		db, err := Open(path, &Options{Device: testDevice()})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		db.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestOpenHeldByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "k.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q", line)
	}
	start := time.Now()
	_, err := Open(path, &Options{Device: testDevice(), Timeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	wantStatus(t, err, ErrNotAvailable)
	if elapsed > 700*time.Millisecond {
		t.Fatalf("Open waited %v with a 200ms timeout", elapsed)
	}
	stdin.Close()
	cmd.Wait()
	db, err := Open(path, &Options{Device: testDevice()})
	if err != nil {
		t.Fatalf("Open after the other process closed: %v", err)
	}
	db.Close()
}

func TestWrongDeviceSecretOpensNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Open(path, nil) // default device: a file beside the database
	if err != nil {
		t.Fatal(err)
	}
	mustAdd(t, db, genp(AttrService, "s", ValueData, []byte("pw")))
	db.Close()
	if fi, err := os.Stat(path + ".device"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("device secret file: %v %v", fi, err)
	}
	// The database file copied elsewhere, without its device secret.
	other := filepath.Join(t.TempDir(), "copy.db")
	b, _ := os.ReadFile(path)
	os.WriteFile(other, b, 0o600)
	_, err = Open(other, nil)
	wantStatus(t, err, ErrAuthFailed)
	if _, err := os.Stat(other + ".device"); !os.IsNotExist(err) {
		t.Fatalf("opening the copy created a device secret beside it (%v)", err)
	}
	_, err = Open(other, &Options{ReadOnly: true})
	wantStatus(t, err, ErrAuthFailed)
	// The right secret copied along opens it.
	sec, _ := os.ReadFile(path + ".device")
	os.WriteFile(other+".device", sec, 0o600)
	db, err = Open(other, nil)
	if err != nil {
		t.Fatalf("the copy with its secret: %v", err)
	}
	if _, err := db.CopyMatching(genp(AttrService, "s", ReturnData, true)); err != nil {
		t.Fatalf("the copy with its secret: %v", err)
	}
	db.Close()
	_, err = Open(path, &Options{Device: testDevice()})
	wantStatus(t, err, ErrAuthFailed)
}

// TestCanaries stores unique values in every attribute of every class, in
// the secrets and as passcodes; locks, unlocks, changes the passcode,
// updates and deletes; and scans every file the store wrote (the database
// and its device secret) for those values, their hex and base64 forms and
// their SHA-1 and SHA-256 digests.
func TestCanaries(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "canary.keychain")
	clock := newClock()
	var canaries [][]byte
	newBytes := func() []byte {
		b := make([]byte, 16)
		rand.Read(b)
		canaries = append(canaries, b)
		return b
	}
	newString := func() string {
		s := "c" + hex.EncodeToString(newBytes())[:15]
		canaries = append(canaries, []byte(s))
		return s
	}
	newNumber := func() int64 {
		var b [8]byte
		rand.Read(b[:])
		n := int64(binary.BigEndian.Uint64(b[:])>>2) + 1<<60
		canaries = append(canaries, binary.BigEndian.AppendUint64(nil, uint64(n)), binary.LittleEndian.AppendUint64(nil, uint64(n)), []byte(strconv.FormatInt(n, 10)))
		return n
	}
	group := newString()
	db, err := Open(path, &Options{Entitlements: Entitlements{KeychainAccessGroups: []string{group}}, Now: clock.Now, PasscodeCost: cheapCost})
	if err != nil {
		t.Fatal(err)
	}
	pass1, pass2 := []byte(newString()), []byte(newString())
	if err := db.SetPasscode(nil, pass1); err != nil {
		t.Fatal(err)
	}
	var queries []Dict
	for _, class := range []string{ClassGenericPassword, ClassInternetPassword, ClassCertificate, ClassKey} {
		for i := 0; i < 4; i++ {
			d := Dict{Class: class}
			for _, code := range canaryAttributes[class] {
				switch canaryKind(code) {
				case "number":
					d[code] = newNumber()
				case "date":
					d[code] = time.Unix(newNumber()%(1<<33), 0)
				case "data":
					d[code] = newBytes()
				default:
					d[code] = newString()
				}
			}
			d[ValueData] = newBytes()
			clock.Advance(time.Duration(newNumber() % int64(time.Hour)))
			mustAdd(t, db, d)
			queries = append(queries, Dict{Class: class, AttrLabel: d[AttrLabel]})
		}
	}
	if err := db.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := db.Unlock(pass1); err != nil {
		t.Fatal(err)
	}
	if err := db.SetPasscode(pass1, pass2); err != nil {
		t.Fatal(err)
	}
	for i, q := range queries {
		switch i % 4 {
		case 1:
			change := Dict{AttrComment: newString(), ValueData: newBytes()}
			if q[Class] == ClassCertificate || q[Class] == ClassKey {
				change = Dict{AttrAlias: newString(), ValueData: newBytes()}
			}
			if err := db.Update(q, change); err != nil {
				t.Fatalf("update: %v", err)
			}
		case 2:
			if err := db.Delete(q); err != nil {
				t.Fatalf("delete: %v", err)
			}
		}
	}
	db.Close()

	var forms [][]byte
	for _, c := range canaries {
		s1, s256 := sha1.Sum(c), sha256.Sum256(c)
		forms = append(forms, c,
			[]byte(hex.EncodeToString(c)), []byte(strings.ToUpper(hex.EncodeToString(c))),
			[]byte(base64.StdEncoding.EncodeToString(c)), []byte(base64.RawURLEncoding.EncodeToString(c)),
			s1[:], s256[:], []byte(hex.EncodeToString(s1[:])), []byte(hex.EncodeToString(s256[:])))
	}
	files, _ := os.ReadDir(dir)
	if len(files) < 2 {
		t.Fatalf("expected the store and its device secret, found %d files", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for i, form := range forms {
			if bytes.Contains(b, form) {
				t.Errorf("file %s contains canary form %d (canary %d)", f.Name(), i%9, i/9)
			}
		}
	}
	t.Logf("%d canaries × 9 forms checked in %d files", len(canaries), len(files))
}

var canaryAttributes = map[string][]string{
	ClassGenericPassword:  append([]string{AttrLabel, AttrDescription, AttrComment, AttrCreator, AttrType, AttrScriptCode, AttrAlias, AttrIsInvisible, AttrIsNegative, AttrHasCustomIcon, AttrProtected, AttrAccount, AttrService, AttrGeneric, AttrSyncUUID}, everyClassCanaries...),
	ClassInternetPassword: append([]string{AttrLabel, AttrDescription, AttrComment, AttrCreator, AttrType, AttrScriptCode, AttrAlias, AttrIsInvisible, AttrIsNegative, AttrHasCustomIcon, AttrProtected, AttrAccount, AttrSecurityDomain, AttrServer, AttrProtocol, AttrAuthenticationType, AttrPort, AttrPath, DataInetExtraNotes, DataInetExtraHistory, DataInetExtraClientDefined0, DataInetExtraClientDefined1, DataInetExtraClientDefined2, DataInetExtraClientDefined3}, everyClassCanaries...),
	ClassCertificate:      append([]string{AttrLabel, AttrCertificateType, AttrCertificateEncoding, AttrAlias, AttrSubject, AttrIssuer, AttrSerialNumber, AttrSubjectKeyID, AttrPublicKeyHash}, everyClassCanaries...),
	ClassKey:              append([]string{AttrLabel, AttrKeyClass, AttrAlias, AttrApplicationLabel, AttrApplicationTag, AttrKeyCreator, AttrKeyType, AttrKeySizeInBits, AttrEffectiveKeySize, AttrStartDate, AttrEndDate, AttrIsPermanent, AttrCanSign}, everyClassCanaries...),
}

// everyClassCanaries are the attributes every class has that can hold a
// canary value. Flags (priv, modi, encr, ...) hold 0 or 1 and cannot;
// tkid names a token, which a random value would not.
var everyClassCanaries = []string{AttrSyncViewHint, AttrSysBound, AttrPCSPlaintextServiceIdentifier, AttrPCSPlaintextPublicKey, AttrPCSPlaintextPublicIdentity, AttrSharingGroup}

func canaryKind(code string) string {
	switch code {
	case AttrCreator, AttrType, AttrScriptCode, AttrIsInvisible, AttrIsNegative, AttrHasCustomIcon, AttrSysBound,
		AttrPCSPlaintextServiceIdentifier, AttrPort, AttrProtocol, AttrCertificateType, AttrCertificateEncoding,
		AttrKeyClass, AttrKeySizeInBits, AttrEffectiveKeySize, AttrIsPermanent, AttrCanSign:
		return "number"
	case AttrStartDate, AttrEndDate:
		return "date"
	case AttrSubject, AttrIssuer, AttrSerialNumber, AttrSubjectKeyID, AttrPublicKeyHash, AttrApplicationLabel,
		DataInetExtraNotes, DataInetExtraHistory, DataInetExtraClientDefined0, DataInetExtraClientDefined3:
		return "data"
	}
	return "string"
}

// TestConcurrentAddAndRead runs 64 goroutines adding and reading at once
// (run it with -race).
func TestConcurrentAddAndRead(t *testing.T) {
	db := openTest(t, nil)
	const workers, perWorker = 64, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := db.Client(Entitlements{KeychainAccessGroups: []string{fmt.Sprintf("G%d", w%4)}})
			for i := 0; i < perWorker; i++ {
				acct := fmt.Sprintf("w%d-i%d", w, i)
				if _, err := c.Add(genp(AttrService, "conc", AttrAccount, acct, ValueData, []byte(acct))); err != nil {
					errs <- err
					return
				}
				got, err := c.CopyMatching(genp(AttrService, "conc", AttrAccount, acct, ReturnData, true))
				if err != nil {
					errs <- err
					return
				}
				if string(got.([]byte)) != acct {
					errs <- fmt.Errorf("read back the wrong secret for %s", acct)
					return
				}
				if _, err := c.CopyMatching(genp(AttrService, "conc", MatchLimit, MatchLimitAll)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all := db.Client(Entitlements{KeychainAccessGroups: []string{"*"}})
	if n := count(t, all, genp(AttrService, "conc")); n != workers*perWorker {
		t.Fatalf("%d items, want %d", n, workers*perWorker)
	}
}

// Concurrent adds share commits; a member whose add fails (a duplicate)
// gets exactly the result it would have had alone, and the others commit.
func TestGroupCommitResults(t *testing.T) {
	db := openTest(t, nil)
	const n = 64
	var wg sync.WaitGroup
	results := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			acct := fmt.Sprint(i / 2) // pairs collide
			_, results[i] = db.Add(genp(AttrService, "group", AttrAccount, acct, ValueData, []byte(acct)))
		}(i)
	}
	wg.Wait()
	ok, dup := 0, 0
	for _, err := range results {
		switch StatusOf(err) {
		case 0:
			ok++
		case ErrDuplicateItem:
			dup++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	if ok != n/2 || dup != n/2 {
		t.Fatalf("%d added, %d duplicates; want %d each", ok, dup, n/2)
	}
	if c := count(t, db, genp(AttrService, "group")); c != n/2 {
		t.Fatalf("%d items stored", c)
	}
}
