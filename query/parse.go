package query

import (
	"sort"
	"sync"
	"time"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

// maxQueryKeys is the device's limit on keys that are not attributes.
const maxQueryKeys = 128

// Parse checks dict for op under flavor and returns its plan. Errors are
// *status.Error values: Param (-50) for a malformed dictionary,
// NoSuchClass (-25306) for an unknown class, NoSuchAttr (-25303) for an
// attribute the class does not have, Unimplemented (-4) for a match key
// the class does not support.
//
// Parse does not look at v_Ref beyond recording it; the caller expands a
// reference into attributes (and a class) before calling Parse.
func Parse(op Op, flavor Flavor, dict map[string]any) (*Plan, error) {
	p := planPool.Get().(*Plan)
	*p = Plan{Op: op, Flavor: flavor}
	if err := p.resolveClass(dict); err != nil {
		return nil, err
	}
	// Room for every key and the three implicit filters up front: Set
	// would otherwise grow the lists one reallocation at a time.
	if len(dict) <= smallQuery {
		p.Fields = p.fieldBuf[:0:smallQuery]
	} else {
		p.Fields = make(schema.Fields, 0, len(dict))
	}
	if op != Add {
		p.Implicit = p.fieldBuf[smallQuery:smallQuery:len(p.fieldBuf)]
	}
	// Keys in map order: the common case has no error. When one key is
	// bad, parse again in sorted order, so the error reported for a
	// dictionary with several bad keys does not depend on map order. Too
	// many keys that are not attributes is reported before any bad key.
	other := 0
	for k, v := range dict {
		if notAttribute(k) {
			other++
		}
		if k == KeyClass {
			continue
		}
		if err := p.key(k, v); err != nil {
			if tooManyKeys(dict) {
				return nil, status.New(status.Param, "more than %d keys that are not attributes", maxQueryKeys)
			}
			return nil, firstError(op, flavor, dict)
		}
	}
	if other > maxQueryKeys {
		return nil, status.New(status.Param, "more than %d keys that are not attributes", maxQueryKeys)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p, nil
}

// planPool holds plans given back by Release (a plan with its inline
// field lists is a kilobyte the collector would otherwise scan and free
// on every query).
var planPool = sync.Pool{New: func() any { return new(Plan) }}

// Release gives p back for reuse by a later Parse. Neither p nor its field
// lists may be used afterwards; a caller that keeps no part of a plan past
// its operation (a search) releases it, others simply drop it.
func (p *Plan) Release() {
	*p = Plan{}
	planPool.Put(p)
}

// tooManyKeys reports whether dict has more than maxQueryKeys keys that
// are not attributes.
func tooManyKeys(dict map[string]any) bool {
	other := 0
	for k := range dict {
		if notAttribute(k) {
			other++
		}
	}
	return other > maxQueryKeys
}

// notAttribute reports whether k counts against maxQueryKeys: neither an
// attribute code nor the class.
func notAttribute(k string) bool { return len(k) != 4 && k != KeyClass }

// firstError parses dict again with its keys sorted and returns the first
// key's error.
func firstError(op Op, flavor Flavor, dict map[string]any) error {
	p := &Plan{Op: op, Flavor: flavor}
	if err := p.resolveClass(dict); err != nil {
		return err
	}
	keys := make([]string, 0, len(dict))
	for k := range dict {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == KeyClass {
			continue
		}
		if err := p.key(k, dict[k]); err != nil {
			return err
		}
	}
	return status.New(status.Internal, "a dictionary error did not reproduce")
}

func (p *Plan) resolveClass(dict map[string]any) error {
	if v, ok := dict[KeyValuePref]; ok {
		g := classify(v)
		if g.kind != goBytes || len(g.b) != PersistentRefSize {
			return status.New(status.Param, "v_PersistentRef must be %d bytes of data", PersistentRefSize)
		}
		ref := &PersistentRef{Class: string(g.b[:4])}
		copy(ref.ID[:], g.b[4:])
		if schema.Lookup(ref.Class) == nil {
			return status.New(status.NoSuchClass, "persistent reference names no known class")
		}
		p.PersistentRef = ref
	}
	cv, ok := dict[KeyClass]
	if !ok {
		if p.PersistentRef != nil {
			p.Class = schema.Lookup(p.PersistentRef.Class)
			return nil
		}
		return status.New(status.Param, "the dictionary has no class")
	}
	g := classify(cv)
	if g.kind != goString {
		return status.New(status.Param, "class must be a string, not %s", g.name)
	}
	p.Class = schema.Lookup(g.s)
	if p.Class == nil {
		return status.New(status.NoSuchClass, "class %q does not exist", g.s)
	}
	if p.PersistentRef != nil && p.PersistentRef.Class != p.Class.Code {
		return status.New(status.NoSuchClass, "class %q conflicts with the persistent reference's class %q", g.s, p.PersistentRef.Class)
	}
	return nil
}

func (p *Plan) key(k string, v any) error {
	if len(k) == 4 {
		return p.attribute(k, v)
	}
	if len(k) <= 1 {
		return status.New(status.Param, "key %q is not valid", k)
	}
	switch k[0] {
	case 'm':
		return p.match(k, v)
	case 'r':
		return p.returnKey(k, v)
	case 'u':
		return p.use(k, v)
	case 'v':
		return p.value(k, v)
	case 'f':
		p.Ignored = append(p.Ignored, k)
		return nil
	}
	return status.New(status.Param, "key %q is not valid", k)
}

func (p *Plan) attribute(k string, v any) error {
	switch k {
	case KeyDataProtKC:
		p.Ignored = append(p.Ignored, k)
		return nil
	case KeySyncAny:
		if p.Op == Add {
			p.Ignored = append(p.Ignored, k)
		} else {
			p.SyncAny = true
		}
		return nil
	}
	a := p.Class.Attr(k)
	if a == nil {
		if p.Flavor == FileBased {
			p.Ignored = append(p.Ignored, k)
			return nil
		}
		return status.New(status.NoSuchAttr, "attribute %q is not valid for class %q", k, p.Class.Code)
	}
	if a.Has(schema.Reserved) {
		return status.New(status.Param, "attribute %q is reserved", k)
	}
	if k == "sync" {
		if g := classify(v); g.kind == goString && g.s == KeySyncAny {
			if p.Op == Add {
				p.Ignored = append(p.Ignored, k)
			} else {
				p.SyncAny = true
			}
			return nil
		}
	}
	val, err := Convert(a, v)
	if err != nil {
		return err
	}
	switch {
	case a.Has(schema.Secret):
		if p.Op == Add {
			p.Secret = p.Secret.Set(a, val)
		} else {
			p.Ignored = append(p.Ignored, k)
		}
	case a.Has(schema.Computed) && p.Op == Add:
		p.Ignored = append(p.Ignored, k)
	default:
		p.Fields = p.Fields.Set(a, val)
	}
	return nil
}

func (p *Plan) returnKey(k string, v any) error {
	var bit Return
	switch k {
	case KeyReturnData:
		bit = ReturnData
	case KeyReturnAttrs:
		bit = ReturnAttributes
	case KeyReturnRef:
		bit = ReturnRef
	case KeyReturnPref:
		bit = ReturnPersistentRef
	default:
		return status.New(status.Param, "key %q is not a return key", k)
	}
	g := classify(v)
	if g.kind != goBool {
		return status.New(status.Param, "%s must be a bool, not %s", k, g.name)
	}
	switch p.Op {
	case Update:
		if p.Flavor == FileBased {
			p.Ignored = append(p.Ignored, k)
			return nil
		}
		return status.New(status.Param, "%s is not allowed in an update query", k)
	case Delete:
		p.Ignored = append(p.Ignored, k)
		return nil
	}
	if g.t {
		p.Return |= bit
	}
	return nil
}

func (p *Plan) value(k string, v any) error {
	switch k {
	case KeyValueData:
		if p.Op != Add {
			// Accepted in a query but never a filter.
			p.Ignored = append(p.Ignored, k)
			return nil
		}
		g := classify(v)
		if g.kind != goBytes {
			return status.New(status.Param, "v_Data must be []byte, not %s", g.name)
		}
		p.Secret = p.Secret.Set(p.Class.Attr(KeyValueData), schema.Data(clone(g.b)))
		return nil
	case KeyValueRef:
		if v == nil {
			return status.New(status.Param, "v_Ref is nil")
		}
		p.Ref = v
		return nil
	case KeyValuePref:
		if p.Op == Add {
			return status.New(status.Param, "v_PersistentRef is not allowed in an add")
		}
		return nil // parsed by resolveClass
	}
	return status.New(status.Param, "key %q is not a value key", k)
}

var useKeys = map[string]bool{
	"u_Tomb": true, "u_CredRef": true, "u_AuthUI": true, "u_AuthCtx": true,
	"u_OpPrompt": true, "u_CallerName": true, "u_TokenRawItems": true,
}

// The values of u_AuthUI.
const (
	AuthUIAllow = "u_AuthUIA"
	AuthUIFail  = "u_AuthUIF"
	AuthUISkip  = "u_AuthUIS"
)

func (p *Plan) use(k string, v any) error {
	if !useKeys[k] {
		return status.New(status.Param, "key %q is not a supported use key", k)
	}
	g := classify(v)
	switch k {
	case "u_Tomb":
		var b bool
		switch g.kind {
		case goBool:
			b = g.t
		case goInt:
			b = g.n != 0
		case goString:
			n, ok := integerString(g.s)
			if !ok {
				return status.New(status.Param, "u_Tomb must be a bool or a number")
			}
			b = n != 0
		default:
			return status.New(status.Param, "u_Tomb must be a bool or a number, not %s", g.name)
		}
		p.Use.Tombstones = &b
	case "u_CredRef":
		if g.kind != goBytes {
			return status.New(status.Param, "u_CredRef must be []byte")
		}
		p.Use.CredRef = clone(g.b)
	case "u_AuthUI":
		if g.kind != goString || (g.s != AuthUIAllow && g.s != AuthUIFail && g.s != AuthUISkip) {
			return status.New(status.Param, "u_AuthUI must be u_AuthUIA, u_AuthUIF or u_AuthUIS")
		}
		if g.s == AuthUISkip && p.Op != Search {
			return status.New(status.Param, "u_AuthUIS is allowed only in SecItemCopyMatching")
		}
		p.Use.AuthUI = g.s
	case "u_AuthCtx":
		p.Use.AuthCtx = true
		p.Ignored = append(p.Ignored, k)
	case "u_OpPrompt", "u_CallerName":
		if g.kind != goString {
			return status.New(status.Param, "%s must be a string", k)
		}
		if k == "u_OpPrompt" {
			p.Use.OpPrompt = g.s
		} else {
			p.Use.CallerName = g.s
		}
	default:
		p.Ignored = append(p.Ignored, k)
	}
	return nil
}

func (p *Plan) match(k string, v any) error {
	switch p.Op {
	case Add:
		return status.New(status.Param, "match key %s is not allowed in an add", k)
	case Update:
		if p.Flavor == FileBased {
			p.Ignored = append(p.Ignored, k)
			return nil
		}
		return status.New(status.Param, "match key %s is not allowed in an update query", k)
	case Delete:
		if p.Flavor == FileBased && k == KeyMatchLimit {
			return p.limit(v)
		}
		if p.Flavor == FileBased {
			p.Ignored = append(p.Ignored, k)
			return nil
		}
		return status.New(status.Param, "match key %s is not allowed in a delete", k)
	}
	g := classify(v)
	certOnly := func() error {
		if p.Class.Code != "cert" && p.Class.Code != "idnt" {
			return status.New(status.Unimplemented, "%s is supported only for certificates and identities", k)
		}
		return nil
	}
	switch k {
	case KeyMatchLimit:
		return p.limit(v)
	case "m_Issuers":
		if g.kind != goSlice {
			return status.New(status.Param, "m_Issuers must be an array of data")
		}
		var out [][]byte
		for _, e := range g.list {
			ge := classify(e)
			if ge.kind != goBytes {
				return status.New(status.Param, "m_Issuers must hold only data")
			}
			out = append(out, clone(ge.b))
		}
		if err := certOnly(); err != nil {
			return err
		}
		p.Match.Issuers = out
	case "m_ValidOnDate":
		var t time.Time
		if v != nil {
			if g.kind != goTime {
				return status.New(status.Param, "m_ValidOnDate must be a time.Time or nil")
			}
			t = g.tm
		}
		if err := certOnly(); err != nil {
			return err
		}
		p.Match.ValidOnDate = &t
	case "m_EmailAddressIfPresent":
		if g.kind != goString {
			return status.New(status.Param, "m_EmailAddressIfPresent must be a string")
		}
		if err := certOnly(); err != nil {
			return err
		}
		p.Match.Email = &g.s
	case "m_HostOrSubdomainOfHost":
		if g.kind != goString {
			return status.New(status.Param, "m_HostOrSubdomainOfHost must be a string")
		}
		if p.Class.Code != "inet" {
			return status.New(status.Unimplemented, "m_HostOrSubdomainOfHost is supported only for internet passwords")
		}
		p.Match.Host = &g.s
	case "m_TrustedOnly":
		if g.kind != goBool {
			return status.New(status.Param, "m_TrustedOnly must be a bool")
		}
		return status.New(status.Unimplemented, "m_TrustedOnly is not implemented")
	case "m_Policy":
		return status.New(status.Unimplemented, "m_Policy is not implemented")
	case "m_CaseInsensitive":
		if g.kind != goBool {
			return status.New(status.Param, "m_CaseInsensitive must be a bool")
		}
		p.Match.IgnoredByThis = append(p.Match.IgnoredByThis, k)
	default:
		// m_SubjectContains, m_ItemList, m_SearchList and unknown m*
		// keys are recorded and ignored, as on the device.
		p.Match.IgnoredByThis = append(p.Match.IgnoredByThis, k)
	}
	return nil
}

func (p *Plan) limit(v any) error {
	g := classify(v)
	switch {
	case g.kind == goString && g.s == LimitOne:
		p.Limit = 1
	case g.kind == goString && g.s == LimitAll:
		p.Limit = 0
	case g.kind == goInt && g.n >= 1:
		p.Limit = int(min(g.n, int64(^uint(0)>>1)))
	default:
		return status.New(status.Param, "m_Limit must be m_LimitOne, m_LimitAll or a positive integer")
	}
	p.LimitGiven = true
	return nil
}

// finish applies the per-operation rules that need the whole dictionary.
func (p *Plan) finish() error {
	if p.Use.AuthCtx && p.Use.CredRef != nil {
		return status.New(status.Param, "u_AuthCtx and u_CredRef together: the authentication context becomes a credential reference, so give one of them")
	}
	switch p.Op {
	case Add:
		if p.Use.AuthUI == AuthUISkip {
			return status.New(status.Param, "u_AuthUIS is allowed only in SecItemCopyMatching")
		}
		return nil
	case Search:
		if !p.LimitGiven {
			p.Limit = 1
		}
		if p.PersistentRef != nil && len(p.Fields) > 0 {
			return status.New(status.Param, "v_PersistentRef cannot be combined with attribute %q in SecItemCopyMatching", p.Fields[0].Attr.Code)
		}
	case Update:
		p.Limit = 0
	case Delete:
		if !p.LimitGiven {
			p.Limit = 0
			if p.Flavor == FileBased {
				p.Limit = 1
			}
		}
	}
	p.addImplicit()
	return nil
}

// addImplicit adds the filters the device adds on its own
// (apple-reference.md c.1): sync = 0 unless the query names sync, syna or
// a persistent reference; tomb = 0 unless it names tomb; musr = the
// single-user view (empty data) unless it names musr.
func (p *Plan) addImplicit() {
	c := p.Class
	if c.IsIdentity() {
		c = schema.Key // the identity join filters on its key's columns
	}
	if _, ok := p.Fields.Get("sync"); !ok && !p.SyncAny && p.PersistentRef == nil {
		p.Implicit = p.Implicit.Set(c.Attr("sync"), schema.Number(0))
	}
	if _, ok := p.Fields.Get("tomb"); !ok {
		p.Implicit = p.Implicit.Set(c.Attr("tomb"), schema.Number(0))
	}
	if _, ok := p.Fields.Get("musr"); !ok {
		p.Implicit = p.Implicit.Set(c.Attr("musr"), schema.Data(nil))
	}
}
