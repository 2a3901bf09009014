// Package jsondict converts keychain dictionaries to and from JSON, the
// form secitemctl reads and prints. Bytes are {"$data":"<base64>"}, dates
// {"$date":"<RFC 3339>"}, numbers are integers; everything else is plain
// JSON.
package jsondict

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"time"
)

// MaxDepth bounds nesting, so hostile input cannot exhaust the stack.
const MaxDepth = 32

// Decode parses one JSON object into a dictionary: strings stay strings,
// booleans bools, integers become int64 (a number with a fraction or an
// exponent is an error), {"$data": base64} becomes []byte, {"$date": RFC
// 3339} time.Time, arrays []any, other objects map[string]any, null nil.
func Decode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: more than one value")
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, errors.New("a dictionary must be a JSON object")
	}
	v, err := convert(obj, 0)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func convert(v any, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, errors.New("nested too deeply")
	}
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not an integer", x)
		}
		return n, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := convert(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		if s, ok := x["$data"]; ok {
			str, isStr := s.(string)
			if len(x) != 1 || !isStr {
				return nil, errors.New(`{"$data": ...} holds one base64 string`)
			}
			b, err := base64.StdEncoding.DecodeString(str)
			if err != nil {
				return nil, fmt.Errorf(`{"$data": ...}: %v`, err)
			}
			return b, nil
		}
		if s, ok := x["$date"]; ok {
			str, isStr := s.(string)
			if len(x) != 1 || !isStr {
				return nil, errors.New(`{"$date": ...} holds one RFC 3339 string`)
			}
			t, err := time.Parse(time.RFC3339Nano, str)
			if err != nil {
				return nil, fmt.Errorf(`{"$date": ...}: %v`, err)
			}
			return t.UTC(), nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := convert(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	}
	return v, nil // string, bool, nil
}

// Marshal returns the JSON form of a value the keychain returns: maps
// (keys sorted), []any, []byte, time.Time, integers, strings, bools, nil.
// Any other value (a certificate, a key) goes through other, which returns
// a JSON-encodable description; nil other rejects them.
func Marshal(v any, other func(any) any) ([]byte, error) {
	j, err := toJSON(v, other, 0)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type ordered struct {
	keys []string
	vals map[string]any
}

func (o ordered) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func toJSON(v any, other func(any) any, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, errors.New("nested too deeply")
	}
	switch x := v.(type) {
	case nil, string, bool, int64, int:
		return x, nil
	case []byte:
		return map[string]string{"$data": base64.StdEncoding.EncodeToString(x)}, nil
	case time.Time:
		return map[string]string{"$date": x.UTC().Format(time.RFC3339Nano)}, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			j, err := toJSON(e, other, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case map[string]any:
		o := ordered{vals: map[string]any{}}
		for k, e := range x {
			j, err := toJSON(e, other, depth+1)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, k)
			o.vals[k] = j
		}
		sort.Strings(o.keys)
		return o, nil
	}
	if m, ok := asMap(v); ok {
		return toJSON(m, other, depth)
	}
	if other != nil {
		return toJSON(other(v), nil, depth+1)
	}
	return nil, fmt.Errorf("cannot print a %T", v)
}

// asMap accepts named map types such as secitem.Dict.
func asMap(v any) (map[string]any, bool) {
	rv := reflect.ValueOf(v)
	t := reflect.TypeOf(map[string]any(nil))
	if rv.Kind() != reflect.Map || !rv.Type().ConvertibleTo(t) {
		return nil, false
	}
	return rv.Convert(t).Interface().(map[string]any), true
}
