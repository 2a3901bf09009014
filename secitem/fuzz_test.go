package secitem_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/secitemdb/secitemdb/internal/fuzzcorpus"
	"github.com/secitemdb/secitemdb/protect"
	. "github.com/secitemdb/secitemdb/secitem"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the fuzz seed corpora and the base store")

// The base store of FuzzOpenCorrupt: testdata/corrupt/base.keychain, with
// its device secret, holding these items (svce -> secret).
var corruptItems = map[string]string{"alpha": "secret-alpha", "beta": "secret-beta", "gamma": "secret-gamma"}

func corruptDevice() protect.Device {
	return protect.NewStaticDevice(bytes.Repeat([]byte{0x77}, protect.SecretSize))
}

func writeBaseStore(f *testing.F, name string) {
	dir := filepath.Join("testdata", "corrupt")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, name)
	os.Remove(path)
	db, err := Open(path, &Options{Device: corruptDevice()})
	if err != nil {
		f.Fatal(err)
	}
	for _, svce := range []string{"alpha", "beta", "gamma"} {
		if _, err := db.Add(Dict{Class: ClassGenericPassword, AttrService: svce, ValueData: []byte(corruptItems[svce])}); err != nil {
			f.Fatal(err)
		}
	}
	db.Add(Dict{Class: ClassInternetPassword, AttrServer: "example.com", ValueData: []byte("secret-inet")})
	db.Close()
}

// FuzzOpenCorrupt patches bytes of a small valid store (each patch: a
// 2-byte offset and a byte to XOR in; a leading 0xFF truncates instead)
// and opens and scans it, then adds an item and reads again. Nothing may
// panic, Open and Add fail with a status, and an item that reads back
// must read back exactly: damage is an error, never wrong plaintext. Its
// base store (testdata/corrupt/base.keychain)
// is of file format 1: its postings are all in the index.
func FuzzOpenCorrupt(f *testing.F) {
	if *writeCorpus {
		// Format 1 cannot be written any more: the base store stays as
		// it is, only the seeds are rewritten.
		writeSeeds(f, "FuzzOpenCorrupt")
	}
	fuzzOpen(f, "FuzzOpenCorrupt", "base.keychain")
}

// FuzzOpenCorruptLog is FuzzOpenCorrupt on a store of format 2 whose
// posting log was merged slice by slice while the items went in: some
// postings are in the index, the others in the log, and meta holds the
// slices' merge marks (testdata/corrupt/logged.keychain), so the damage
// reaches the log's pages and values and the marks too.
func FuzzOpenCorruptLog(f *testing.F) {
	if *writeCorpus {
		// Format 2 cannot be written any more either.
		writeSeeds(f, "FuzzOpenCorruptLog")
	}
	fuzzOpen(f, "FuzzOpenCorruptLog", "logged.keychain")
}

// FuzzOpenCorruptTip is FuzzOpenCorrupt on a store of format 3
// (testdata/corrupt/tip.keychain: one value in the log's bucket, the
// rest of the postings in the tip's tail, nothing merged), so the damage
// reaches the tip: the generation, version root, row sequence, version
// chunk and log tail in the inline bucket the root page carries.
func FuzzOpenCorruptTip(f *testing.F) {
	if *writeCorpus {
		writeBaseStore(f, "tip.keychain")
		writeSeeds(f, "FuzzOpenCorruptTip")
	}
	fuzzOpen(f, "FuzzOpenCorruptTip", "tip.keychain")
}

func writeSeeds(f *testing.F, name string) {
	if err := fuzzcorpus.Write(".", name,
		[]any{[]byte{}}, []any{[]byte{0x00, 0x10, 0xff}}, []any{[]byte{0x30, 0x00, 0x01, 0x40, 0x00, 0x80}},
		[]any{[]byte{0xff, 0x20, 0x00}}, []any{[]byte{0x60, 0x10, 0x55, 0x70, 0x20, 0xaa}}); err != nil {
		f.Fatal(err)
	}
}

func fuzzOpen(f *testing.F, name, baseName string) {
	fuzzcorpus.Require(f, name)
	base, err := os.ReadFile(filepath.Join("testdata", "corrupt", baseName))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, patches []byte) {
		b := bytes.Clone(base)
		if len(patches) >= 3 && patches[0] == 0xff {
			b = b[:int(binary.BigEndian.Uint16(patches[1:3]))%len(b)]
			patches = patches[3:]
		}
		for i := 0; i+3 <= len(patches) && len(b) > 0; i += 3 {
			b[int(binary.BigEndian.Uint16(patches[i:]))%len(b)] ^= patches[i+2]
		}
		path := filepath.Join(t.TempDir(), "k.db")
		os.WriteFile(path, b, 0o600)
		db, err := Open(path, &Options{Device: corruptDevice(), Timeout: 1})
		if err != nil {
			// A damaged file is refused with a status, never anything else.
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Open of a damaged file failed without a status: %v", err)
			}
			switch se.Status {
			case ErrDecode, ErrAuthFailed, ErrNotAvailable, ErrIO:
			default:
				t.Fatalf("Open of a damaged file failed with %v", err)
			}
			return
		}
		defer db.Close()
		for _, class := range []string{ClassGenericPassword, ClassInternetPassword, ClassCertificate, ClassKey} {
			db.Items(class, true, func(item Dict, err error) bool {
				if err != nil {
					return true
				}
				svce, _ := item[AttrService].(string)
				want, known := corruptItems[svce]
				if class == ClassInternetPassword {
					want, known = "secret-inet", true
				}
				if !known || string(item[ValueData].([]byte)) != want {
					t.Fatalf("a damaged store returned wrong plaintext for %s %q", class, svce)
				}
				return true
			})
		}
		if _, err := db.Check(); err != nil {
			if se := (*Error)(nil); !errors.As(err, &se) {
				t.Fatalf("Check failed without a status: %v", err)
			}
		}
		all := db.Client(Entitlements{KeychainAccessGroups: []string{"*"}})
		readKnown(t, all)
		// A write to the damaged store fails with a status, or stores an
		// item that reads back exactly; the others still never read back
		// wrong.
		if _, err := db.Add(Dict{Class: ClassGenericPassword, AttrService: "delta", ValueData: []byte("secret-delta")}); err != nil {
			if se := (*Error)(nil); !errors.As(err, &se) {
				t.Fatalf("Add failed without a status: %v", err)
			}
			return
		}
		r, err := all.CopyMatching(Dict{Class: ClassGenericPassword, AttrService: "delta", ReturnData: true})
		if err == nil && string(r.([]byte)) != "secret-delta" {
			t.Fatal("the item added to a damaged store read back wrong")
		}
		readKnown(t, all)
	})
}

// readKnown asks for each item of the base store by service and by its
// whole lookup key: an answer must be the item's secret.
func readKnown(t *testing.T, all *Client) {
	t.Helper()
	for svce, want := range corruptItems {
		r, err := all.CopyMatching(Dict{Class: ClassGenericPassword, AttrService: svce, ReturnData: true})
		if err == nil && string(r.([]byte)) != want {
			t.Fatalf("CopyMatching of %q returned wrong plaintext", svce)
		}
		// By the whole lookup key, twice: the second answer comes
		// from the lookup cache when the first filled it, and must
		// be the first's.
		var first string
		for i := range 2 {
			r, err := all.CopyMatching(Dict{Class: ClassGenericPassword, AttrService: svce, AttrAccount: "", ReturnData: true})
			got := fmt.Sprint(StatusOf(err))
			if err == nil {
				if string(r.([]byte)) != want {
					t.Fatalf("CopyMatching of %q by its lookup key returned wrong plaintext", svce)
				}
				got = "found"
			}
			if i == 1 && got != first {
				t.Fatalf("CopyMatching of %q by its lookup key: %s, then %s", svce, first, got)
			}
			first = got
		}
	}
}
