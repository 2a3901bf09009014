package robustness

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/secitem"
)

// The workload: generic passwords under 200 accounts of service "robust"
// with values of 1 B to 64 KiB, and two identities (certificate and key
// added in one transaction). The child reports each call before it starts
// ("B op key hash") and when it returns ("A ..." on success, "E ... status"
// on failure); the parent replays the reports into the model of what must
// be in the store.

const (
	workloadKeys = 200
	service      = "robust"
)

var identityNames = []string{"leaf-p384", "leaf-rsa"}

func loadIdentity(name string) (*identity.Identity, error) {
	read := func(file string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join("..", "..", "identity", "testdata", file))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", file)
		}
		return blk.Bytes, nil
	}
	cb, err := read(name + ".pem")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(cb)
	if err != nil {
		return nil, err
	}
	kb, err := read(name + ".key")
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kb)
	if err != nil {
		return nil, err
	}
	return &identity.Identity{Certificate: cert, PrivateKey: key.(crypto.Signer)}, nil
}

func genp(acct string) secitem.Dict {
	return secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: service, secitem.AttrAccount: acct}
}

// randomValue returns 1 B to 64 KiB: mostly small, like credentials, with
// a tail of large values that span pages.
func randomValue(rng *mrand.Rand) []byte {
	n := 1 + rng.IntN(256)
	if rng.IntN(10) == 0 {
		n = 1 + rng.IntN(64<<10)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func childWorkload(fail func(error) int) int {
	path := os.Getenv("SECITEM_PATH")
	seed, _ := strconv.ParseUint(os.Getenv("SECITEM_SEED"), 10, 64)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	opts := options()
	if f := os.Getenv("SECITEM_ANCHOR"); f != "" {
		opts.RollbackAnchor = &fileAnchor{path: f}
	}
	db, err := secitem.Open(path, opts)
	if err != nil {
		return fail(err)
	}
	var ids []*identity.Identity
	for _, n := range identityNames {
		id, err := loadIdentity(n)
		if err != nil {
			return fail(err)
		}
		ids = append(ids, id)
	}
	report("R")
	maxOps, _ := strconv.Atoi(os.Getenv("SECITEM_OPS"))
	for i := 0; maxOps == 0 || i < maxOps; i++ {
		key := "k" + strconv.Itoa(rng.IntN(workloadKeys))
		var op, hash string
		var call func() error
		switch r := rng.IntN(100); {
		case r < 40:
			v := randomValue(rng)
			op, hash = "add", hashOf(v)
			d := genp(key)
			d[secitem.ValueData] = v
			call = func() error { _, err := db.Add(d); return err }
		case r < 75:
			v := randomValue(rng)
			op, hash = "update", hashOf(v)
			call = func() error { return db.Update(genp(key), secitem.Dict{secitem.ValueData: v}) }
		case r < 95:
			op, hash = "delete", "-"
			call = func() error { return db.Delete(genp(key)) }
		case r < 98:
			n := rng.IntN(len(ids))
			op, key, hash = "idadd", identityNames[n], "-"
			call = func() error { _, err := db.Add(secitem.Dict{secitem.ValueRef: ids[n]}); return err }
		default:
			n := rng.IntN(len(ids))
			op, key, hash = "iddel", identityNames[n], "-"
			call = func() error { return db.Delete(secitem.Dict{secitem.ValueRef: ids[n]}) }
		}
		report("B %s %s %s", op, key, hash)
		if err := call(); err != nil {
			report("E %s %s %s %d", op, key, hash, statusOf(err))
			if s := statusOf(err); s != secitem.ErrDuplicateItem && s != secitem.ErrItemNotFound {
				return fail(err)
			}
			continue
		}
		report("A %s %s %s", op, key, hash)
	}
	if err := db.Close(); err != nil {
		return fail(err)
	}
	report("D")
	return 0
}

// model is what the acknowledged calls say the store holds.
type model struct {
	values  map[string]string // account → value hash
	ids     map[string]bool   // identity name → present
	pending string            // the report of a call that started and never returned
}

func newModel() *model {
	return &model{values: map[string]string{}, ids: map[string]bool{}}
}

// apply replays a child's reports. A call reported "B" without an answer
// is pending: the child died inside it, so the store may show it done or
// not done.
func (m *model) apply(t testing.TB, lines []string) (acked int) {
	t.Helper()
	m.pending = ""
	for _, l := range lines {
		f := strings.Fields(l)
		switch f[0] {
		case "B":
			m.pending = l
		case "E":
			m.pending = ""
		case "A":
			m.pending = ""
			acked++
			op, key, hash := f[1], f[2], f[3]
			switch op {
			case "add", "update":
				m.values[key] = hash
			case "delete":
				delete(m.values, key)
			case "idadd":
				m.ids[key] = true
			case "iddel":
				m.ids[key] = false
			}
		}
	}
	return acked
}

// verify checks the reopened store against the model: every acknowledged
// value is there, unchanged; every acknowledged delete holds; the one
// pending call is either fully applied or not at all; an identity's
// certificate and key are both there or both gone. It then adopts the
// pending call's outcome so the model stays exact.
func (m *model) verify(t testing.TB, db *secitem.DB) (checked int) {
	t.Helper()
	var pend []string
	if m.pending != "" {
		pend = strings.Fields(m.pending)
	}
	for i := 0; i < workloadKeys; i++ {
		key := "k" + strconv.Itoa(i)
		q := genp(key)
		q[secitem.ReturnData] = true
		got := ""
		v, err := db.CopyMatching(q)
		switch {
		case err == nil:
			got = hashOf(v.([]byte))
		case statusOf(err) != secitem.ErrItemNotFound:
			t.Fatalf("reading %s: %v", key, err)
		}
		want := m.values[key]
		if got == want {
			checked++
			continue
		}
		if pend != nil && pend[2] == key {
			// The call in flight decides: its outcome must be complete.
			after := want
			switch pend[1] {
			case "add":
				if want == "" {
					after = pend[3]
				}
			case "update":
				if want != "" {
					after = pend[3]
				}
			case "delete":
				after = ""
			}
			if got == after {
				if got == "" {
					delete(m.values, key)
				} else {
					m.values[key] = got
				}
				checked++
				continue
			}
		}
		t.Fatalf("account %s: store holds %q, acknowledged state is %q (pending call: %q)", key, got, want, m.pending)
	}
	for _, name := range identityNames {
		id, err := loadIdentity(name)
		if err != nil {
			t.Fatal(err)
		}
		certs := countOf(t, db, secitem.Dict{secitem.Class: secitem.ClassCertificate, secitem.AttrPublicKeyHash: pkhh(t, id)})
		keys := countOf(t, db, secitem.Dict{secitem.Class: secitem.ClassKey, secitem.AttrApplicationLabel: pkhh(t, id)})
		if certs != keys {
			t.Fatalf("identity %s half there: %d certificates, %d keys", name, certs, keys)
		}
		present := certs == 1
		if present != m.ids[name] {
			if pend == nil || pend[2] != name || (pend[1] == "idadd") != present {
				t.Fatalf("identity %s: present %v, acknowledged %v (pending %q)", name, present, m.ids[name], m.pending)
			}
			m.ids[name] = present
		}
		checked += 2
	}
	return checked
}

func pkhh(t testing.TB, id *identity.Identity) []byte {
	a, err := identity.CertificateAttributes(id.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	return a[secitem.AttrPublicKeyHash].([]byte)
}

func countOf(t testing.TB, db *secitem.DB, q secitem.Dict) int {
	t.Helper()
	q[secitem.MatchLimit] = secitem.MatchLimitAll
	q[secitem.ReturnAttributes] = true
	v, err := db.CopyMatching(q)
	if statusOf(err) == secitem.ErrItemNotFound {
		return 0
	}
	if err != nil {
		t.Fatalf("CopyMatching: %v", err)
	}
	switch r := v.(type) {
	case []secitem.Dict:
		return len(r)
	case []any:
		return len(r)
	}
	t.Fatalf("CopyMatching returned %T", v)
	return 0
}

// FI-1: kill -9 at a random moment during random Adds, Updates and
// Deletes, again and again on the same store. Nothing acknowledged is ever
// lost or changed, no call is half applied, and the store checks clean
// after every kill.
func TestKillDuringWorkload(t *testing.T) {
	kills := runs(300, 20_000)
	path := filepath.Join(t.TempDir(), "kill.keychain")
	m := newModel()
	seedRNG := mrand.New(mrand.NewPCG(1, 2))
	var acked, checked, pendingSeen int
	var slowestOpen time.Duration
	for i := 0; i < kills; i++ {
		c := startChild(t, "workload", "SECITEM_PATH="+path, fmt.Sprintf("SECITEM_SEED=%d", seedRNG.Uint64()))
		if l, ok := <-c.lines; !ok || l != "R" {
			c.kill()
			t.Fatalf("kill %d: child did not start (%q): %s", i, l, c.stderrText())
		}
		// Half the kills come after a random delay, half after a random
		// number of acknowledged calls.
		var lines []string
		if i%2 == 0 {
			time.Sleep(time.Duration(seedRNG.IntN(150_000)) * time.Microsecond)
		} else {
			for n := seedRNG.IntN(40); n > 0; {
				l, ok := <-c.lines
				if !ok {
					break
				}
				lines = append(lines, l)
				if l[0] == 'A' {
					n--
				}
			}
		}
		lines = append(lines, c.kill()...)
		if !c.killed() {
			t.Fatalf("kill %d: the child ended on its own (%v): %s", i, c.err, c.stderrText())
		}
		acked += m.apply(t, lines)
		if m.pending != "" {
			pendingSeen++
		}
		start := time.Now()
		db := openStore(t, path)
		slowestOpen = max(slowestOpen, time.Since(start))
		checked += m.verify(t, db)
		checkClean(t, db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("FI-1: %d kills, %d acknowledged calls, %d kills inside a call, %d item checks, 0 lost; slowest reopen %v",
		kills, acked, pendingSeen, checked, slowestOpen)
}

// fileAnchor is a rollback anchor kept in a small file beside the store,
// written and synced on every advance (for the child processes; a real one
// lives on another device).
type fileAnchor struct{ path string }

func (a *fileAnchor) Load() (uint64, error) {
	b, err := os.ReadFile(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

func (a *fileAnchor) Advance(g uint64) error {
	cur, err := a.Load()
	if err != nil || g <= cur {
		return err
	}
	tmp := a.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.FormatUint(g, 10)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, a.path)
}
