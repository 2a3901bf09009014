package secitem

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/secitemdb/secitemdb/schema"
)

// A trace record of one call, written to Options.Logger when the call
// returns: the operation, the dictionaries passed in with secrets redacted,
// the shape of the result (never its contents) and the status.
type trace struct {
	db    *DB
	op    string
	in    []string
	start time.Time
}

func (db *DB) startTrace(op string, dicts ...Dict) *trace {
	if db.log == nil {
		return nil
	}
	t := &trace{db: db, op: op, start: time.Now()}
	for _, d := range dicts {
		t.in = append(t.in, FormatDict(d))
	}
	return t
}

func (t *trace) end(result any, err error, notes ...string) {
	if t == nil {
		return
	}
	attrs := []slog.Attr{slog.String("op", t.op)}
	switch len(t.in) {
	case 1:
		attrs = append(attrs, slog.String("in", t.in[0]))
	case 2:
		attrs = append(attrs, slog.String("query", t.in[0]), slog.String("attributesToUpdate", t.in[1]))
	}
	s := StatusOf(err)
	attrs = append(attrs, slog.String("result", Shape(result)), slog.String("status", statusName(s)), slog.Int("code", int(s)))
	if e, ok := err.(*Error); ok && e.Detail != "" {
		attrs = append(attrs, slog.String("detail", e.Detail))
	}
	if len(notes) > 0 {
		attrs = append(attrs, slog.String("note", strings.Join(notes, "; ")))
	}
	attrs = append(attrs, slog.Duration("elapsed", time.Since(t.start)))
	t.db.log.LogAttrs(context.Background(), slog.LevelInfo, "secitem", attrs...)
}

func statusName(s Status) string {
	if s == 0 {
		return "errSecSuccess"
	}
	return s.Name()
}

// secretKeys are redacted wherever a dictionary is printed.
var secretKeys = map[string]bool{
	ValueData: true, UseCredentialReference: true, UseAuthenticationContext: true,
	DataInetExtraNotes: true, DataInetExtraHistory: true, DataInetExtraClientDefined0: true,
	DataInetExtraClientDefined1: true, DataInetExtraClientDefined2: true, DataInetExtraClientDefined3: true,
}

// FormatDict formats a dictionary for traces and diagnostics, keys
// sorted, with secrets redacted: v_Data and the other secret values print
// as <redacted N bytes>, refs as their Go type.
func FormatDict(d Dict) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(formatValue(k, d[k]))
	}
	b.WriteByte('}')
	return b.String()
}

func formatValue(key string, v any) string {
	if secretKeys[key] {
		switch x := v.(type) {
		case []byte:
			return fmt.Sprintf("<redacted %d bytes>", len(x))
		case string:
			return fmt.Sprintf("<redacted %d bytes>", len(x))
		}
		return "<redacted>"
	}
	switch x := v.(type) {
	case nil:
		return "nil"
	case string:
		return fmt.Sprintf("%q", x)
	case []byte:
		if len(x) > 64 {
			return fmt.Sprintf("<%x… %d bytes>", x[:32], len(x))
		}
		return fmt.Sprintf("<%x>", x)
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case Dict:
		return FormatDict(x)
	case map[string]any:
		return FormatDict(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue("", e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case schema.Value:
		return x.GoString()
	}
	return fmt.Sprintf("<%T>", v) // refs and other objects: their type only
}

// Shape describes a result without its contents, for traces: "nil",
// "[]byte(8)", "Dict(12 keys)", "[]any(3)", or the Go type of a ref.
func Shape(result any) string {
	switch x := result.(type) {
	case nil:
		return "nil"
	case []byte:
		return fmt.Sprintf("[]byte(%d)", len(x))
	case Dict:
		return fmt.Sprintf("Dict(%d keys)", len(x))
	case []any:
		return fmt.Sprintf("[]any(%d)", len(x))
	}
	return fmt.Sprintf("%T", result)
}
