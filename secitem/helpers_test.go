package secitem_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

// testDevice returns a fixed device secret for tests. DO NOT hardcode
// device secrets in real code.
func testDevice() *protect.StaticDevice {
	return protect.NewStaticDevice(bytes.Repeat([]byte{0x42}, protect.SecretSize))
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens a new store in a temporary directory with a static device
// secret and closes it when the test ends.
func openTest(t testing.TB, opts *secitem.Options) *secitem.DB {
	t.Helper()
	var o secitem.Options
	if opts != nil {
		o = *opts
	}
	if o.Device == nil {
		o.Device = testDevice()
	}
	db, err := secitem.Open(filepath.Join(t.TempDir(), "test.keychain"), &o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

type adder interface {
	Add(secitem.Dict) (any, error)
}

func mustAdd(t testing.TB, c adder, d secitem.Dict) any {
	t.Helper()
	r, err := c.Add(d)
	if err != nil {
		t.Fatalf("Add(%s): %v", secitem.FormatDict(d), err)
	}
	return r
}

// wantStatus fails unless err carries status want (0 = success).
func wantStatus(t testing.TB, err error, want secitem.Status) {
	t.Helper()
	got := secitem.StatusOf(err)
	if got != want {
		t.Fatalf("status = %d (%v), want %d (%s)", got, err, want, statusText(want))
	}
	if want == 0 {
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("errors.Is(%v, %d) = false", err, want)
	}
	var e *secitem.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not a *secitem.Error", err)
	}
	if e.Op == "" || e.Detail == "" {
		t.Fatalf("error %#v lacks Op or Detail", e)
	}
}

func statusText(s secitem.Status) string {
	if s == 0 {
		return "success"
	}
	return s.Error()
}

func genp(kv ...any) secitem.Dict {
	d := secitem.Dict{secitem.Class: secitem.ClassGenericPassword}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

func dictOf(class string, kv ...any) secitem.Dict {
	d := secitem.Dict{secitem.Class: class}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return d
}

// matching returns every item CopyMatching finds for q, with its
// attributes (q's own return keys are kept); nil on not found.
func matching(t testing.TB, c interface {
	CopyMatching(secitem.Dict) (any, error)
}, q secitem.Dict) []secitem.Dict {
	t.Helper()
	q2 := secitem.Dict{secitem.MatchLimit: secitem.MatchLimitAll, secitem.ReturnAttributes: true}
	for k, v := range q {
		q2[k] = v
	}
	r, err := c.CopyMatching(q2)
	if errors.Is(err, secitem.ErrItemNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("CopyMatching(%s): %v", secitem.FormatDict(q2), err)
	}
	var out []secitem.Dict
	for _, x := range r.([]any) {
		out = append(out, x.(secitem.Dict))
	}
	return out
}

// count returns how many items CopyMatching finds for q (0 on not found).
func count(t testing.TB, c interface {
	CopyMatching(secitem.Dict) (any, error)
}, q secitem.Dict) int {
	t.Helper()
	return len(matching(t, c, q))
}
