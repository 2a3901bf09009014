package jsondict

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDecode(t *testing.T) {
	d, err := Decode([]byte(`{"class":"genp","v_Data":{"$data":"cHc="},"cdat":{"$date":"2026-01-02T03:04:05.5+01:00"},"port":443,"r_Data":true,"m_Issuers":[{"$data":"MAA="}],"private":{"perm":true},"x":null}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"class": "genp", "v_Data": []byte("pw"), "cdat": time.Date(2026, 1, 2, 2, 4, 5, 5e8, time.UTC),
		"port": int64(443), "r_Data": true, "m_Issuers": []any{[]byte{0x30, 0}}, "private": map[string]any{"perm": true}, "x": nil,
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Fatal(diff)
	}
	for _, bad := range []string{`[]`, `{"a":1.5}`, `{"a":1e3}`, `{"a":{"$data":"!!"}}`, `{"a":{"$data":"cHc=","b":1}}`, `{"a":{"$date":"yesterday"}}`, `{"a":{"$date":5}}`, `{} {}`, `{`, strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted", bad)
		}
	}
}

type named map[string]any

func TestMarshalRoundTrip(t *testing.T) {
	in := named{"b": []byte{1, 2}, "a": time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), "n": int64(-3), "l": []any{"x", true, nil}}
	out, err := Marshal(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte("{\n  \"a\": {\n    \"$date\": \"2026-01-02T03:04:05.000000006Z\"")) {
		t.Fatalf("keys not sorted or dates not tagged:\n%s", out)
	}
	back, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any(in), back); diff != "" {
		t.Fatal(diff)
	}
	if _, err := Marshal(struct{}{}, nil); err == nil {
		t.Fatal("an unknown type was printed")
	}
	j, _ := Marshal(map[string]any{"ref": struct{}{}}, func(any) any { return map[string]any{"$ref": "thing"} })
	if !bytes.Contains(j, []byte(`"$ref": "thing"`)) {
		t.Fatalf("other: %s", j)
	}
}
