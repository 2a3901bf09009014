package schema

import (
	"slices"
	"testing"
	"time"
)

// The uniqueness constraints of apple-reference.md a.4-a.7.
func TestPrimaryKeys(t *testing.T) {
	want := map[string][]string{
		"genp": {"acct", "svce", "agrp", "sync", "vwht", "tkid", "musr", "ggrp"},
		"inet": {"acct", "sdmn", "srvr", "ptcl", "atyp", "port", "path", "agrp", "sync", "vwht", "tkid", "musr", "ggrp"},
		"cert": {"ctyp", "issr", "slnr", "agrp", "sync", "vwht", "tkid", "musr", "ggrp"},
		"keys": {"kcls", "klbl", "atag", "crtr", "type", "bsiz", "esiz", "sdat", "edat", "agrp", "sync", "vwht", "tkid", "musr", "ggrp"},
	}
	for code, pk := range want {
		var got []string
		for _, a := range Lookup(code).PrimaryKey() {
			got = append(got, a.Code)
		}
		if !slices.Equal(got, pk) {
			t.Errorf("%s primary key = %v, want %v", code, got, pk)
		}
	}
}

func TestClassAttributes(t *testing.T) {
	has := func(class, code string) bool { return Lookup(class).Attr(code) != nil }
	for _, code := range []string{"desc", "icmt", "crtr", "type", "acct", "svce", "gena"} {
		if !has("genp", code) {
			t.Errorf("genp lacks %s", code)
		}
	}
	for _, code := range []string{"desc", "icmt", "crtr", "type", "acct", "svce", "gena", "atag"} {
		if has("cert", code) {
			t.Errorf("cert must not have %s (a.6)", code)
		}
	}
	for _, code := range []string{"svce", "gena"} {
		if has("inet", code) {
			t.Errorf("inet must not have %s (a.5)", code)
		}
	}
	// The identity class looks in cert first, then keys (a.8).
	if a := Identity.Attr("labl"); a != Certificate.Attr("labl") {
		t.Error("idnt labl must be the certificate's")
	}
	if a := Identity.Attr("atag"); a != Key.Attr("atag") {
		t.Error("idnt atag must be the key's")
	}
	if Identity.Attr("acct") != nil {
		t.Error("idnt must not have acct")
	}
	// keys reuse crtr and type as primary-key attributes (a.7).
	if !Key.Attr("type").Has(PrimaryKey) || GenericPassword.Attr("type").Has(PrimaryKey) {
		t.Error("type is part of the key's primary key only")
	}
	if len(Codes()) != 5 || Lookup("apls") != nil {
		t.Errorf("classes: %v", Codes())
	}
	for _, c := range Classes() {
		for i, a := range c.Attrs {
			if a.Index() != i || c.Attr(a.Code) != a {
				t.Errorf("%s.%s: index %d at %d", c.Code, a.Code, a.Index(), i)
			}
			if a.Kind.String() == "" {
				t.Errorf("%s.%s has no kind", c.Code, a.Code)
			}
			if len(a.Code) != 4 && a.Code != "v_Data" {
				t.Errorf("%s.%s: attribute codes have four characters", c.Code, a.Code)
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	cases := []struct {
		class, code string
		want        Value
		ok          bool
	}{
		{"genp", "acct", String(""), true},
		{"genp", "gena", Value{}, false},
		{"inet", "port", Number(0), true},
		{"cert", "issr", Data(nil), true},
		{"keys", "sdat", Date(ReferenceDate), true},
		{"genp", "vwht", String(""), true}, // a primary-key attribute without a stored default
		{"genp", "musr", Data(nil), true},
		{"genp", "tomb", Number(0), true},
	}
	for _, tc := range cases {
		got, ok := Lookup(tc.class).Attr(tc.code).Default()
		if ok != tc.ok || (ok && !got.Equal(tc.want)) {
			t.Errorf("%s.%s default = %#v %v, want %#v %v", tc.class, tc.code, got, ok, tc.want, tc.ok)
		}
	}
}

func TestValueEquality(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	eq := [][2]Value{
		{String("abc"), Data([]byte("abc"))},
		{Number(7), Number(7)},
		{Date(now), Date(now.In(time.FixedZone("x", 3600)))},
		{Data(nil), String("")},
	}
	ne := [][2]Value{
		{String("1"), Number(1)},
		{String("a"), String("A")},
		{Number(0), Date(ReferenceDate)},
		{Date(now), Date(now.Add(1))},
	}
	for _, p := range append(eq, ne...) {
		for _, v := range p {
			if got, want := v.CanonicalLen(), len(v.Canonical(nil)); got != want {
				t.Errorf("%#v: CanonicalLen %d, encoding is %d bytes", v, got, want)
			}
		}
	}
	for _, p := range eq {
		if !p[0].Equal(p[1]) || string(p[0].Canonical(nil)) != string(p[1].Canonical(nil)) {
			t.Errorf("%#v and %#v must be equal", p[0], p[1])
		}
	}
	for _, p := range ne {
		if p[0].Equal(p[1]) || string(p[0].Canonical(nil)) == string(p[1].Canonical(nil)) {
			t.Errorf("%#v and %#v must differ", p[0], p[1])
		}
	}
}

func TestFieldsKeepSchemaOrder(t *testing.T) {
	c := GenericPassword
	var fs Fields
	for _, code := range []string{"svce", "acct", "cdat", "agrp", "gena"} {
		fs = fs.Set(c.Attr(code), String(code))
	}
	fs = fs.Set(c.Attr("acct"), String("again"))
	for i := 1; i < len(fs); i++ {
		if fs[i-1].Attr.Index() >= fs[i].Attr.Index() {
			t.Fatalf("out of order: %v", fs)
		}
	}
	if v, _ := fs.Get("acct"); v.Str != "again" || len(fs) != 5 {
		t.Fatalf("Set did not replace: %v", fs)
	}
	fs = fs.Delete("acct")
	if _, ok := fs.Get("acct"); ok || len(fs) != 4 {
		t.Fatal("Delete")
	}
}

// AppendKey gives two keys the same bytes only when their values are the
// same: each value is length-prefixed, and a missing attribute counts as
// its default.
func TestAppendKey(t *testing.T) {
	c := GenericPassword
	acct, svce := c.Attr("acct"), c.Attr("svce")
	key := func(a, s string) string {
		return string(Fields{}.Set(acct, String(a)).Set(svce, String(s)).AppendKey(nil, c.LookupKey()))
	}
	if key("ab", "c") == key("a", "bc") {
		t.Fatal("two different keys share an encoding")
	}
	if key("a", "b") != key("a", "b") {
		t.Fatal("the same key encodes two ways")
	}
	onlyAcct := string(Fields{}.Set(acct, String("a")).AppendKey(nil, c.LookupKey()))
	if onlyAcct != key("a", "") {
		t.Fatal("a missing svce does not count as its default (empty)")
	}
}

// TestAttrTable checks the four-character code table against the class's
// map: every code of every class, and codes no class has, find exactly
// what the map finds.
func TestAttrTable(t *testing.T) {
	codes := []string{"zzzz", "acc", "accts", "", "\x00\x00\x00\x00", "ACCT"}
	for _, c := range Classes() {
		for _, a := range c.Attrs {
			codes = append(codes, a.Code, a.Code[:3]+"~")
		}
	}
	for _, c := range Classes() {
		for _, code := range codes {
			if got, want := c.Attr(code), c.byCode[code]; got != want {
				t.Errorf("%s.Attr(%q) = %v, want %v", c.Code, code, got, want)
			}
		}
	}
}

// Building a class's code table is cheap: it runs for every class at
// start-up, in every program that imports the schema (a search that
// began below the attribute count once cost 39 MB and 20 ms there).
func TestCodeTableCheap(t *testing.T) {
	for _, c := range Classes() {
		if n := testing.AllocsPerRun(3, func() { newCodeTable(c.Attrs) }); n > 4 {
			t.Errorf("%s: building the code table allocates %.0f times", c.Code, n)
		}
	}
}

// The attributes every query filters on implicitly, and access groups,
// have few values (their tags are cached); account and service do not.
func TestFewValues(t *testing.T) {
	for _, c := range Classes() {
		for _, code := range []string{"sync", "tomb", "musr", "agrp", "pdmn", "ggrp"} {
			if !c.Attr(code).Has(FewValues) {
				t.Errorf("%s.%s lacks FewValues", c.Code, code)
			}
		}
	}
	for _, code := range []string{"acct", "svce", "cdat", "labl"} {
		if GenericPassword.Attr(code).Has(FewValues) {
			t.Errorf("genp.%s has FewValues", code)
		}
	}
}
