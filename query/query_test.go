package query

import (
	"bytes"
	"testing"
	"time"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

type myString string
type myInt uint16

// The conversions of apple-reference.md a.2.
func TestConvert(t *testing.T) {
	g := schema.GenericPassword
	k := schema.Key
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
	cases := []struct {
		name  string
		attr  *schema.Attr
		in    any
		want  schema.Value
		fails bool
	}{
		{"blob keeps a string", g.Attr("acct"), "a", schema.String("a"), false},
		{"blob keeps data", g.Attr("acct"), []byte("a"), schema.Data([]byte("a")), false},
		{"blob keeps a number", g.Attr("acct"), 5, schema.Number(5), false},
		{"blob takes a named string type", g.Attr("acct"), myString("a"), schema.String("a"), false},
		{"blob rejects a float", g.Attr("acct"), 1.5, schema.Value{}, true},
		{"data takes a string as UTF-8", k.Attr("klbl"), "é", schema.Data([]byte("é")), false},
		{"data takes a number as 4 bytes little-endian", k.Attr("klbl"), 0x01020304, schema.Data([]byte{4, 3, 2, 1}), false},
		{"data rejects a number beyond 32 bits", k.Attr("klbl"), int64(1) << 40, schema.Value{}, true},
		{"data rejects a bool", k.Attr("klbl"), true, schema.Value{}, true},
		{"string takes UTF-8 data", g.Attr("agrp"), []byte("G"), schema.String("G"), false},
		{"string rejects invalid UTF-8", g.Attr("agrp"), []byte{0xff}, schema.Value{}, true},
		{"string rejects a number", g.Attr("agrp"), 1, schema.Value{}, true},
		{"number takes a bool", g.Attr("invi"), true, schema.Number(1), false},
		{"number takes an integer string", g.Attr("crtr"), "-42", schema.Number(-42), false},
		{"number keeps a non-integer string", schema.InternetPassword.Attr("ptcl"), "htps", schema.String("htps"), false},
		{"number keeps a string that does not round-trip", g.Attr("crtr"), "042", schema.String("042"), false},
		{"number takes a named unsigned type", g.Attr("crtr"), myInt(7), schema.Number(7), false},
		{"number rejects a uint64 above int64", g.Attr("crtr"), uint64(1) << 63, schema.Value{}, true},
		{"bool attribute stores 1 for any non-zero", g.Attr("sync"), 7, schema.Number(1), false},
		{"bool attribute rejects a word", g.Attr("sync"), "yes", schema.Value{}, true},
		{"date takes a time and stores UTC", g.Attr("cdat"), now, schema.Date(now), false},
		{"date rejects a string", g.Attr("cdat"), "2026", schema.Value{}, true},
		{"access takes a known class", g.Attr("pdmn"), "akpu", schema.String("akpu"), false},
		{"access rejects UntilReboot", g.Attr("pdmn"), "f", schema.Value{}, true},
		{"uuid takes empty data", g.Attr("musr"), []byte{}, schema.Data(nil), false},
		{"uuid rejects 15 bytes", g.Attr("musr"), make([]byte, 15), schema.Value{}, true},
		{"sha1 takes 20 bytes", g.Attr("sha1"), make([]byte, 20), schema.Data(make([]byte, 20)), false},
		{"nil is rejected", g.Attr("acct"), nil, schema.Value{}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Convert(tc.attr, tc.in)
			if tc.fails {
				if status.Of(err) != status.Param {
					t.Fatalf("Convert = %#v, %v; want ErrParam", got, err)
				}
				return
			}
			if err != nil || got.T != tc.want.T || !got.Equal(tc.want) {
				t.Fatalf("Convert = %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}

func TestConvertCopiesBytes(t *testing.T) {
	in := []byte("abc")
	v, _ := Convert(schema.GenericPassword.Attr("gena"), in)
	in[0] = 'X'
	if string(v.Data) != "abc" {
		t.Fatal("Convert kept the caller's slice")
	}
}

func TestParseLimits(t *testing.T) {
	cases := []struct {
		op     Op
		flavor Flavor
		dict   map[string]any
		limit  int
	}{
		{Search, DataProtection, map[string]any{"class": "genp"}, 1},
		{Search, DataProtection, map[string]any{"class": "genp", "m_Limit": "m_LimitAll"}, 0},
		{Search, DataProtection, map[string]any{"class": "genp", "m_Limit": 3}, 3},
		{Update, DataProtection, map[string]any{"class": "genp"}, 0},
		{Delete, DataProtection, map[string]any{"class": "genp"}, 0},
		{Delete, FileBased, map[string]any{"class": "genp"}, 1},
		{Delete, FileBased, map[string]any{"class": "genp", "m_Limit": "m_LimitAll"}, 0},
	}
	for _, tc := range cases {
		p, err := Parse(tc.op, tc.flavor, tc.dict)
		if err != nil || p.Limit != tc.limit {
			t.Errorf("%v %v %v: limit %v, %v; want %d", tc.op, tc.flavor, tc.dict, p, err, tc.limit)
		}
	}
}

func TestImplicitFiltersAreNamed(t *testing.T) {
	p, _ := Parse(Search, DataProtection, map[string]any{"class": "genp"})
	var codes []string
	for _, f := range p.Implicit {
		codes = append(codes, f.Attr.Code)
	}
	if len(codes) != 3 {
		t.Fatalf("implicit filters %v, want sync, tomb, musr", codes)
	}
	p, _ = Parse(Search, DataProtection, map[string]any{"class": "genp", "sync": "syna", "tomb": 1})
	if len(p.Implicit) != 1 || !p.SyncAny {
		t.Fatalf("with syna and tomb only musr is implicit: %v", p.Implicit)
	}
	p, _ = Parse(Add, DataProtection, map[string]any{"class": "genp", "sync": "syna"})
	if _, ok := p.Fields.Get("sync"); ok || len(p.Implicit) != 0 {
		t.Fatalf("syna on add means not synchronizable: %v", p.Fields)
	}
}

func TestShape(t *testing.T) {
	c := schema.GenericPassword
	item := Item{
		Class:         "genp",
		Attrs:         schema.Fields{}.Set(c.Attr("acct"), schema.String("a")).Set(c.Attr("tomb"), schema.Number(0)).Set(c.Attr("UUID"), schema.String("hidden")),
		Secret:        schema.Fields{}.Set(c.Attr("v_Data"), schema.Data([]byte("pw"))),
		PersistentRef: []byte("genp0123456789abcdef"),
	}
	plan := func(op Op, r Return, limit int) *Plan { return &Plan{Op: op, Return: r, Limit: limit, Class: c} }
	if got := Shape[map[string]any](plan(Search, ReturnAttributes, 1), []Item{item}).(map[string]any); got["acct"] != "a" || got["UUID"] != nil || got["v_Data"] != nil || got["tomb"] == nil {
		t.Errorf("attributes: %v", got)
	}
	if got := Shape[map[string]any](plan(Add, ReturnAttributes, 0), []Item{item}).(map[string]any); got["tomb"] != nil {
		t.Errorf("add returns only A attributes: %v", got)
	}
	got := Shape[map[string]any](plan(Search, ReturnData|ReturnPersistentRef, 0), []Item{item, item}).([]any)
	if len(got) != 2 || !bytes.Equal(got[1].(map[string]any)["v_PersistentRef"].([]byte), item.PersistentRef) {
		t.Errorf("several keys, limit all: %v", got)
	}
	fb := plan(Add, ReturnAttributes, 0)
	fb.Flavor = FileBased
	if _, ok := Shape[map[string]any](fb, []Item{item}).([]any); !ok {
		t.Errorf("the file-based shim returns an array from an add with attributes")
	}
}

func TestFullName(t *testing.T) {
	contents := []byte{0x31, 0x10, 0x30, 0x0e, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x07, 'M', 'o', 'u', 's', 'e', 'C', 'A', 0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, 'G', 'B'}
	want := append([]byte{0x30, 0x1f}, contents...)
	if got := FullName(contents); !bytes.Equal(got, want) {
		t.Fatalf("FullName = %x, want %x", got, want)
	}
	long := FullName(make([]byte, 300))
	if !bytes.Equal(long[:4], []byte{0x30, 0x82, 0x01, 0x2c}) {
		t.Fatalf("long form: %x", long[:4])
	}
}

// u_AuthCtx alone is accepted (the client turns it into a credential
// reference); together with u_CredRef it is errSecParam, in every
// operation (apple-reference.md c.9).
func TestAuthContextWithCredentialReference(t *testing.T) {
	ctx := map[string]any{"class": "genp", "u_AuthCtx": "context"}
	both := map[string]any{"class": "genp", "u_AuthCtx": "context", "u_CredRef": []byte{1}}
	for _, op := range []Op{Add, Search, Update, Delete} {
		if _, err := Parse(op, DataProtection, ctx); err != nil {
			t.Errorf("%v with u_AuthCtx: %v", op, err)
		}
		_, err := Parse(op, DataProtection, both)
		if st, ok := err.(*status.Error); !ok || st.Code != status.Param {
			t.Errorf("%v with u_AuthCtx and u_CredRef: %v, want errSecParam", op, err)
		}
	}
}

// TestReleasedPlanStartsClean parses a large query, releases its plan and
// parses small ones: whatever plan the pool hands back, the result equals
// that of a fresh plan (nothing of the first query survives), and a query
// with more attributes than a plan holds inline still parses whole.
func TestReleasedPlanStartsClean(t *testing.T) {
	big := map[string]any{
		KeyClass: "genp", "svce": "s", "acct": "a", "labl": "l", "desc": "d", "icmt": "c",
		"gena": []byte("g"), "crtr": 7, "type": 9, "m_Limit": "m_LimitAll", "r_Attributes": true,
	}
	small := map[string]any{KeyClass: "genp", "svce": "s2", "r_Data": true}
	fresh := func(d map[string]any) Plan {
		p, err := Parse(Search, DataProtection, d)
		if err != nil {
			t.Fatal(err)
		}
		out := *p // never released: a plan no pool has touched
		out.fieldBuf = [len(out.fieldBuf)]schema.Field{}
		return out
	}
	wantSmall, wantBig := fresh(small), fresh(big)
	for i := 0; i < 50; i++ {
		p, err := Parse(Search, DataProtection, big)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Fields) != len(wantBig.Fields) || p.Limit != wantBig.Limit || p.Return != wantBig.Return {
			t.Fatalf("round %d: big query parsed to %d fields, limit %d", i, len(p.Fields), p.Limit)
		}
		p.Release()
		q, err := Parse(Search, DataProtection, small)
		if err != nil {
			t.Fatal(err)
		}
		if q.Limit != wantSmall.Limit || q.LimitGiven || q.Return != wantSmall.Return || len(q.Fields) != len(wantSmall.Fields) ||
			len(q.Implicit) != len(wantSmall.Implicit) || len(q.Ignored) != 0 {
			t.Fatalf("round %d: a reused plan kept state: %d fields, %d implicit, limit %d (given %v), return %v",
				i, len(q.Fields), len(q.Implicit), q.Limit, q.LimitGiven, q.Return)
		}
		for j, f := range q.Fields {
			if f.Attr != wantSmall.Fields[j].Attr || f.Value.Str != wantSmall.Fields[j].Value.Str {
				t.Fatalf("round %d: field %d is %s, want %s", i, j, f.Attr.Code, wantSmall.Fields[j].Attr.Code)
			}
		}
		q.Release()
	}
}
