package fuzzcorpus

import (
	"fmt"
	"strconv"
)

// goLiteral formats one fuzz argument the way the corpus format expects.
func goLiteral(v any) string {
	switch x := v.(type) {
	case []byte:
		return "[]byte(" + strconv.Quote(string(x)) + ")"
	case string:
		return "string(" + strconv.Quote(x) + ")"
	case bool:
		return fmt.Sprintf("bool(%v)", x)
	case int64:
		return fmt.Sprintf("int64(%d)", x)
	case uint8:
		return fmt.Sprintf("byte(%d)", x)
	}
	panic(fmt.Sprintf("fuzzcorpus: unsupported seed type %T", v))
}
