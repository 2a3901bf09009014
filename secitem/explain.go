package secitem

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/query"
	"github.com/secitemdb/secitemdb/schema"
)

// Explanation answers "why didn't it match?" for one query: the filters
// the keychain added on its own, and for every item of the query's class
// whether the query matches it and, when not, every reason why.
type Explanation struct {
	// Operation is the operation whose parsing and matching are explained:
	// "SecItemCopyMatching", "SecItemUpdate" or "SecItemDelete".
	Operation string
	// Class is the query's class code.
	Class string
	// Query is the query as given, secrets redacted.
	Query string
	// Implicit lists the filters the keychain added to the caller's
	// (access groups, sync = 0, tomb = 0, musr).
	Implicit []string
	// Ignored lists the query's keys that were accepted and ignored, so
	// they filter nothing: for example an attribute the class does not
	// have, which the file-based keychain drops (pitfall 2), or nleg.
	Ignored []string
	// Matches is how many items the operation would return or change,
	// before its match limit.
	Matches int
	// Items are the items considered: matches first, then near misses,
	// fewest reasons first, each group in creation order.
	Items []ExplainedItem
	// Undecided names what could not be evaluated (values of locked
	// items, match keys that need a locked item's contents).
	Undecided []string
}

// ExplainedItem is one item of an Explanation.
type ExplainedItem struct {
	// PersistentRef identifies the item (v_PersistentRef).
	PersistentRef []byte
	// Summary names the item by its primary-key attributes, when its
	// class key is available.
	Summary string
	// Matches is true when the query matches the item and CopyMatching
	// would return it.
	Matches bool
	// Reasons says why the query does not match (empty for a match).
	Reasons []Reason
	// Notes add what a caller should know: for example that an Add of the
	// query's dictionary would collide with this item.
	Notes []string
}

// Reason is one cause of a miss.
type Reason struct {
	// Kind is "attribute" (a filter's value differs), "sync", "tomb",
	// "musr", "group" (access group), "locked" (class key unavailable),
	// "damaged", "match" (an m_ key excludes it) or "reference" (the
	// persistent reference names another item).
	Kind string
	// Attr is the attribute concerned, when there is one.
	Attr string
	// Text explains it; attribute values appear in it, secrets never.
	Text string
}

// Explain explains a CopyMatching query of this caller against every item
// of its class that the caller may see (items in its access groups; a
// caller learns nothing of the others). The query is parsed exactly as
// CopyMatching parses it, and fails the same way. Explain decides
// attribute filters from the keyed tags, so it works while locked; it
// then cannot show a locked item's values and says so in Undecided.
func (c *Client) Explain(q Dict) (*Explanation, error) {
	return c.explain(OpCopyMatching, q, false)
}

// Explain is the default caller's Explain.
func (db *DB) Explain(q Dict) (*Explanation, error) { return db.def.Explain(q) }

// ExplainAs explains the query of a caller with entitlements e against
// every item of its class, in every access group: the operator's view
// (secitemctl explain), which names the access groups a caller is
// missing. Like Items, it bypasses access groups: never expose it to a
// caller that should see only its own.
func (db *DB) ExplainAs(e Entitlements, q Dict) (*Explanation, error) {
	return db.Client(e).explain(OpCopyMatching, q, true)
}

// ExplainOperation is Explain for the query of an Update (op OpUpdate) or
// a Delete (OpDelete) as well as a CopyMatching: the query is parsed as
// that operation parses it (match and return keys are errSecParam in an
// Update query, and ignored by the file-based flavor; the limit is all
// matches), so an Update or Delete that answered errSecItemNotFound can
// be explained too.
func (c *Client) ExplainOperation(op string, q Dict) (*Explanation, error) {
	return c.explain(op, q, false)
}

// ExplainOperation is the default caller's ExplainOperation.
func (db *DB) ExplainOperation(op string, q Dict) (*Explanation, error) {
	return db.def.ExplainOperation(op, q)
}

// ExplainOperationAs is ExplainAs for an operation (see ExplainOperation).
func (db *DB) ExplainOperationAs(e Entitlements, op string, q Dict) (*Explanation, error) {
	return db.Client(e).explain(op, q, true)
}

func (c *Client) explain(op string, q Dict, everyItem bool) (ex *Explanation, err error) {
	var qop query.Op
	switch op {
	case OpCopyMatching:
		qop = query.Search
	case OpUpdate:
		qop = query.Update
	case OpDelete:
		qop = query.Delete
	default:
		return nil, newErr("Explain", ErrParam, fmt.Sprintf("cannot explain operation %q: explain SecItemCopyMatching, SecItemUpdate or SecItemDelete", op))
	}
	leave, err := c.db.enter()
	if err != nil {
		return nil, wrapErr("Explain", err)
	}
	defer leave()
	d, err := expandQueryRef(q)
	if err != nil {
		return nil, wrapErr("Explain", err)
	}
	p, err := c.parse(qop, d)
	if err != nil {
		return nil, wrapErr("Explain", err)
	}
	if p.Class.IsIdentity() {
		return nil, newErr("Explain", ErrParam, "explain a certificate (class cert) or key (class keys) query: an identity is their join")
	}
	ex = &Explanation{Operation: op, Class: p.Class.Code, Query: FormatDict(q), Implicit: implicitFilters(p), Ignored: slices.Clone(p.Ignored)}
	slices.Sort(ex.Ignored)
	err = c.db.st.View(func(tx *store.Tx) error {
		return tx.Find(store.Query{Class: p.Class}, func(r *store.Record) (bool, error) {
			if !everyItem && p.Groups != nil && !tx.Matches(store.Query{Class: p.Class, Groups: p.Groups}, r) {
				return true, nil // not the caller's to know about
			}
			it, undecided := c.explainItem(tx, p, r)
			if it.Matches {
				ex.Matches++
			}
			ex.Items = append(ex.Items, it)
			for _, u := range undecided {
				if !slices.Contains(ex.Undecided, u) {
					ex.Undecided = append(ex.Undecided, u)
				}
			}
			return true, nil
		})
	})
	if err != nil {
		return nil, wrapErr("Explain", err)
	}
	sort.SliceStable(ex.Items, func(i, j int) bool {
		a, b := ex.Items[i], ex.Items[j]
		if a.Matches != b.Matches {
			return a.Matches
		}
		return len(a.Reasons) < len(b.Reasons)
	})
	return ex, nil
}

// implicitFilters describes the filters the keychain adds.
func implicitFilters(p *query.Plan) []string {
	var out []string
	if p.Groups == nil {
		out = append(out, `agrp: any access group (the caller's list has "*")`)
	} else {
		out = append(out, fmt.Sprintf("agrp: one of the caller's access groups %s", quoteList(p.Groups)))
	}
	for _, f := range p.Implicit {
		switch f.Attr.Code {
		case AttrSynchronizable:
			out = append(out, "sync = 0: synchronizable items are left out unless the query names sync (1 or syna)")
		case AttrTombstone:
			out = append(out, "tomb = 0: tombstones (deleted synchronizable items) are left out unless the query names tomb")
		case AttrMultiUser:
			out = append(out, "musr = empty: items of other users are left out")
		default:
			out = append(out, fmt.Sprintf("%s = %s", f.Attr.Code, f.Value.GoString()))
		}
	}
	return out
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// explainItem decides every filter of p for r.
func (c *Client) explainItem(tx *store.Tx, p *query.Plan, r *store.Record) (it ExplainedItem, undecided []string) {
	it.PersistentRef = r.PersistentRef()
	attrs, secret, readErr := tx.Read(r, store.PartAttrs|store.PartSecret)
	locked := status.Of(readErr) == status.InteractionNotAllowed
	damaged := readErr != nil && !locked
	if damaged && p.Op != query.Delete {
		it.Reasons = append(it.Reasons, Reason{Kind: "damaged", Text: "the item is damaged (it fails authentication); searches skip it and an Add of its primary key replaces it"})
		return it, nil
	}
	// A delete decides from the keyed tags alone, so it reaches locked and
	// damaged items too: their filters are still explained.
	switch {
	case readErr == nil:
		it.Summary = summarize(p.Class, attrs)
	case locked:
		it.Summary = "(attributes sealed: " + c.protectionOf(r) + " is unavailable)"
	case damaged:
		it.Summary = "(damaged: it fails authentication)"
	}
	value := func(code string) string {
		if readErr != nil {
			return ""
		}
		if v, ok := attrs.Get(code); ok {
			return v.GoString()
		}
		return "not set"
	}
	if p.PersistentRef != nil && !bytes.Equal(p.PersistentRef.ID[:], r.RefID[:]) {
		it.Reasons = append(it.Reasons, Reason{Kind: "reference", Text: "the query's persistent reference names another item"})
	}
	for _, f := range p.Fields {
		if tx.Has(r, f) {
			continue
		}
		text := fmt.Sprintf("%s differs: the query has %s", f.Attr.Code, f.Value.GoString())
		switch {
		case locked:
			text += ", the item another value (hidden: its class key is unavailable)"
			undecided = append(undecided, "the values of attributes that differ on locked items")
		case damaged:
			text += ", the item another value (hidden: the item is damaged)"
		default:
			text += ", the item " + value(f.Attr.Code)
		}
		it.Reasons = append(it.Reasons, Reason{Kind: "attribute", Attr: f.Attr.Code, Text: text})
	}
	for _, f := range p.Implicit {
		if tx.Has(r, f) {
			continue
		}
		switch f.Attr.Code {
		case AttrSynchronizable:
			it.Reasons = append(it.Reasons, Reason{Kind: "sync", Attr: f.Attr.Code,
				Text: "synchronizable item (sync = 1): add sync = syna (kSecAttrSynchronizableAny) or sync = 1 to the query"})
		case AttrTombstone:
			it.Reasons = append(it.Reasons, Reason{Kind: "tomb", Attr: f.Attr.Code,
				Text: "tombstone: a deleted synchronizable item, seen only by a query that names tomb"})
		case AttrMultiUser:
			it.Reasons = append(it.Reasons, Reason{Kind: "musr", Attr: f.Attr.Code, Text: "the item belongs to another user (musr)"})
		}
	}
	if p.Groups != nil && !tx.Matches(store.Query{Class: p.Class, Groups: p.Groups}, r) {
		g := value(AttrAccessGroup)
		switch {
		case damaged:
			g = "(hidden: the item is damaged)"
		case g == "":
			g = "(hidden: its class key is unavailable)"
		}
		it.Reasons = append(it.Reasons, Reason{Kind: "group", Attr: AttrAccessGroup,
			Text: fmt.Sprintf("access group %s is not in this caller's list %s", g, quoteList(p.Groups))})
	}
	if len(it.Reasons) == 0 {
		switch {
		case damaged: // (a delete: the only operation that reaches it)
			it.Matches = true
			it.Notes = append(it.Notes, "the item is damaged (it fails authentication), but a delete needs no key: it would be deleted")
		case locked && p.Op == query.Delete:
			// Delete needs no key: it removes a locked item too.
			it.Matches = true
			it.Notes = append(it.Notes, "its class key is unavailable, but a delete needs none: it would be deleted")
		case locked:
			it.Reasons = append(it.Reasons, Reason{Kind: "locked", Text: c.lockedText(r, p.Op)})
			if hasResidual(p) {
				undecided = append(undecided, "match keys that need a locked item's contents")
			}
		case !c.residualMatch(tx, p, attrs, secret):
			it.Reasons = append(it.Reasons, Reason{Kind: "match", Text: "the match keys (" + strings.Join(residualKeys(p), ", ") + ") exclude it"})
		default:
			it.Matches = true
		}
	}
	if !it.Matches && hasKind(it.Reasons, "attribute") && c.addWouldCollide(tx, p, r) {
		it.Notes = append(it.Notes, "same primary key as the query: adding the query's dictionary (with v_Data) fails with errSecDuplicateItem (-25299); update this item instead")
	}
	return it, undecided
}

func hasKind(rs []Reason, kind string) bool {
	for _, r := range rs {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

// protectionOf names r's protection class ("pdmn ak"), from its header.
func (c *Client) protectionOf(r *store.Record) string {
	if pc, ok := c.db.st.Keybag().ClassOf(r.KeyID); ok {
		return fmt.Sprintf("pdmn %s", pc)
	}
	return "its protection class"
}

// lockedText explains an item that matches by its tags but whose class
// key is unavailable, with the status CopyMatching gives.
func (c *Client) lockedText(r *store.Record, op query.Op) string {
	prot := c.protectionOf(r)
	st := "errSecInteractionNotAllowed (-25308)"
	name := "CopyMatching"
	switch {
	case op == query.Update:
		name = "Update" // fails whole, in both flavors
	case c.db.flavor == query.FileBased:
		st = "errSecItemNotFound (-25300) (the file-based shim reports a locked item as not found)"
	}
	return fmt.Sprintf("the item matches, but its class key is unavailable while %s (%s): %s answers %s until Unlock", c.db.state(), prot, name, st)
}

// addWouldCollide reports whether an Add of the query's attributes would
// take r's primary key: the situation of pitfall 1, where a search misses
// on an attribute outside the primary key.
func (c *Client) addWouldCollide(tx *store.Tx, p *query.Plan, r *store.Record) bool {
	fields := p.Fields.Clone()
	for _, a := range p.Class.PrimaryKey() {
		if _, ok := fields.Get(a.Code); ok {
			continue
		}
		switch a.Code {
		case AttrAccessGroup:
			g := query.DefaultGroup(query.Writable(c.groups))
			if g == "" {
				return false
			}
			fields = fields.Set(a, schema.String(g))
		case AttrSynchronizable, AttrTombstone:
			fields = fields.Set(a, schema.Number(0))
		}
	}
	return tx.SamePrimaryKey(r, fields)
}

func hasResidual(p *query.Plan) bool {
	return p.Match.Host != nil || certMatchKeys(p)
}

func residualKeys(p *query.Plan) []string {
	var out []string
	if p.Match.Host != nil {
		out = append(out, MatchHostOrSubdomainOfHost)
	}
	if p.Match.Issuers != nil {
		out = append(out, MatchIssuers)
	}
	if p.Match.ValidOnDate != nil {
		out = append(out, MatchValidOnDate)
	}
	if p.Match.Email != nil {
		out = append(out, MatchEmailAddressIfPresent)
	}
	return out
}

// summarize names an item by its primary-key attributes.
func summarize(c *schema.Class, attrs schema.Fields) string {
	var parts []string
	for _, a := range c.PrimaryKey() {
		v, ok := attrs.Get(a.Code)
		if !ok {
			continue
		}
		if d, ok := a.Default(); ok && d.Equal(v) {
			continue
		}
		s := v.GoString()
		if len(s) > 40 {
			s = s[:37] + "…"
		}
		parts = append(parts, a.Code+" "+s)
	}
	return strings.Join(parts, ", ")
}
