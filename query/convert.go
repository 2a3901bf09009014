package query

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// Convert turns a Go value into the value attribute a stores, following the
// device's conversions (apple-reference.md a.2). It fails with ErrParam
// (status.Param) and a detail naming the attribute, never the value.
func Convert(a *schema.Attr, v any) (schema.Value, error) {
	bad := func(why string) (schema.Value, error) {
		return schema.Value{}, status.New(status.Param, "attribute %q (%s) %s", a.Code, a.Kind, why)
	}
	if v == nil {
		return bad("has a nil value")
	}
	g := classify(v)
	switch a.Kind {
	case schema.Blob:
		switch g.kind {
		case goString:
			return schema.String(g.s), nil
		case goBytes:
			return schema.Data(clone(g.b)), nil
		case goInt:
			return schema.Number(g.n), nil
		case goBool:
			return schema.Number(b2i(g.t)), nil
		}
		return bad("must be a string, []byte or integer, not " + g.name)
	case schema.DataKind:
		switch g.kind {
		case goBytes:
			return schema.Data(clone(g.b)), nil
		case goString:
			return schema.Data([]byte(g.s)), nil
		case goInt:
			if g.n < math.MinInt32 || g.n > math.MaxInt32 {
				return bad("is an integer that does not fit in 32 bits")
			}
			return schema.Data(binary.LittleEndian.AppendUint32(nil, uint32(int32(g.n)))), nil
		}
		return bad("must be []byte, a string or an integer, not " + g.name)
	case schema.StringKind:
		switch g.kind {
		case goString:
			return schema.String(g.s), nil
		case goBytes:
			if !utf8.Valid(g.b) {
				return bad("is data that is not valid UTF-8")
			}
			return schema.String(string(g.b)), nil
		}
		return bad("must be a string, not " + g.name)
	case schema.NumberKind:
		switch g.kind {
		case goInt:
			return schema.Number(g.n), nil
		case goBool:
			return schema.Number(b2i(g.t)), nil
		case goString:
			if n, ok := integerString(g.s); ok {
				return schema.Number(n), nil
			}
			return schema.String(g.s), nil
		}
		return bad("must be an integer, a bool or a string, not " + g.name)
	case schema.BoolKind:
		switch g.kind {
		case goBool:
			return schema.Number(b2i(g.t)), nil
		case goInt:
			return schema.Number(b2i(g.n != 0)), nil
		case goString:
			if n, ok := integerString(g.s); ok {
				return schema.Number(b2i(n != 0)), nil
			}
		}
		return bad("must be a bool or a number, not " + g.name)
	case schema.DateKind:
		if g.kind == goTime {
			return schema.Date(g.tm), nil
		}
		return bad("must be a time.Time, not " + g.name)
	case schema.Access, schema.AccessControl:
		if g.kind != goString {
			return bad("must be a protection class string, not " + g.name)
		}
		if !schema.ValidProtection(g.s) {
			return bad(fmt.Sprintf("has an unknown protection class %q", g.s))
		}
		return schema.String(g.s), nil
	case schema.UUIDKind:
		if g.kind == goBytes && (len(g.b) == 0 || len(g.b) == 16) {
			return schema.Data(clone(g.b)), nil
		}
		return bad("must be 16 bytes or empty data")
	case schema.SHA1Kind:
		if g.kind == goBytes && len(g.b) == 20 {
			return schema.Data(clone(g.b)), nil
		}
		return bad("must be 20 bytes of data")
	}
	return bad("has a kind secitemdb does not know")
}

// integerString reports whether s is the decimal form of an int64 that
// formats back to exactly s (CFNumber conversion of a string).
func integerString(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != s {
		return 0, false
	}
	return n, true
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

type goKind uint8

const (
	goOther goKind = iota
	goString
	goBytes
	goInt
	goBool
	goTime
	goSlice
)

// goValue is a caller's value sorted into the kinds the dictionary rules
// care about. Named types (type Account string) count as their kind.
type goValue struct {
	kind goKind
	name string // the Go type, for error details
	s    string
	b    []byte
	n    int64
	t    bool
	tm   time.Time
	list []any
}

func classify(v any) goValue {
	switch x := v.(type) {
	case nil:
		return goValue{name: "nil"}
	case string:
		return goValue{kind: goString, name: "string", s: x}
	case []byte:
		return goValue{kind: goBytes, name: "[]byte", b: x}
	case bool:
		return goValue{kind: goBool, name: "bool", t: x}
	case int:
		return goValue{kind: goInt, name: "int", n: int64(x)}
	case int64:
		return goValue{kind: goInt, name: "int64", n: x}
	case time.Time:
		return goValue{kind: goTime, name: "time.Time", tm: x}
	case []any:
		return goValue{kind: goSlice, name: "[]any", list: x}
	}
	rv := reflect.ValueOf(v)
	g := goValue{name: rv.Type().String()}
	switch rv.Kind() {
	case reflect.String:
		g.kind, g.s = goString, rv.String()
	case reflect.Bool:
		g.kind, g.t = goBool, rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		g.kind, g.n = goInt, rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u <= math.MaxInt64 {
			g.kind, g.n = goInt, int64(u)
		} else {
			g.name += " (too large for int64)"
		}
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 && rv.Kind() == reflect.Slice {
			g.kind, g.b = goBytes, rv.Bytes()
			break
		}
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			break
		}
		g.kind = goSlice
		g.list = make([]any, rv.Len())
		for i := range g.list {
			g.list[i] = rv.Index(i).Interface()
		}
	}
	return g
}
