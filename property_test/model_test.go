package property_test

// A rapid state machine runs random sequences of Add, CopyMatching, Update,
// Delete, Lock, Unlock (right and wrong passcodes), SetPasscode,
// close-and-reopen and clock moves, from callers with overlapping access
// groups, against a store and against a reference model: plain maps that
// implement the rules of apple-reference.md and decisions.md as directly as
// possible. Every status and every result is compared; after every tenth
// step (and at the end) the store's integrity check must pass and every
// readable item must equal its model. A CopyMatching that asks for
// persistent references follows each one back to its item; Update and
// Delete queries sometimes carry the match and return keys the data
// protection keychain refuses and the shim strips or honours. The classes
// are generic and internet passwords, keys and certificates (whose
// primary key is type, issuer and serial number; their protection
// defaults to dk).
//
// The same machine runs in both flavors: the model's flavor switches are
// exactly the documented file-based differences, so a store that matches
// its model in both flavors differs between them only in those ways.
//
// Soak: RAPID_CHECKS=10000 go test ./property_test -run 'TestModel' -timeout 4h
// runs about 1,200,000 steps per flavor (docs/testing.md).

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/query"
	. "github.com/secitemdb/secitemdb/secitem"
)

// ---- the model -------------------------------------------------------

type mItem struct {
	class  string
	attrs  map[string]any // every attribute the model knows, Go values as returned
	secret []byte         // nil: no v_Data
}

type model struct {
	flavor   Flavor
	items    []*mItem // creation order
	passcode []byte   // nil: no passcode
	state    LockState
	failures int
	last     time.Time
	now      time.Time
}

// The classes, attributes and values the machine draws from: few, so
// primary keys collide often.
var (
	mClasses = []string{ClassGenericPassword, ClassInternetPassword, ClassKey, ClassCertificate}
	mPK      = map[string][]string{
		ClassGenericPassword:  {AttrAccount, AttrService, AttrAccessGroup},
		ClassInternetPassword: {AttrAccount, AttrServer, AttrPort, AttrAccessGroup},
		ClassKey:              {AttrApplicationTag, AttrKeyClass, AttrAccessGroup},
		ClassCertificate:      {AttrCertificateType, AttrIssuer, AttrSerialNumber, AttrAccessGroup},
	}
	mDefaults = map[string]map[string]any{
		ClassGenericPassword:  {AttrAccount: "", AttrService: ""},
		ClassInternetPassword: {AttrAccount: "", AttrServer: "", AttrPort: int64(0)},
		ClassKey:              {AttrApplicationTag: "", AttrKeyClass: int64(0)},
		ClassCertificate:      {AttrCertificateType: int64(0), AttrIssuer: []byte{}, AttrSerialNumber: []byte{}},
	}
	mValues = map[string][]any{
		AttrAccount: {"", "a", "b"}, AttrService: {"s", "t"}, AttrGeneric: {"x", "y"}, AttrLabel: {"l1", "l2"},
		AttrServer: {"h1", "h2"}, AttrPort: {int64(0), int64(443)}, AttrComment: {"c1", "c2"},
		AttrApplicationTag: {"k1", "k2"}, AttrKeyClass: {int64(0), int64(1)},
		// Issuers that are not DER Names are stored and compared as given
		// (a DER Name would be normalised: identity's own tests cover
		// that); the file-based flavor returns them wrapped in a SEQUENCE.
		AttrCertificateType: {int64(1), int64(3)}, AttrIssuer: {[]byte("i1"), []byte("i2")},
		AttrSerialNumber: {[]byte{1}, []byte{2}},
	}
	mAttrs = map[string][]string{
		ClassGenericPassword:  {AttrAccount, AttrService, AttrGeneric, AttrLabel},
		ClassInternetPassword: {AttrAccount, AttrServer, AttrPort, AttrComment, AttrLabel},
		ClassKey:              {AttrApplicationTag, AttrKeyClass, AttrLabel},
		ClassCertificate:      {AttrCertificateType, AttrIssuer, AttrSerialNumber, AttrLabel},
	}
	mProtections = []string{AccessibleWhenUnlocked, AccessibleAfterFirstUnlock, AccessibleAlways,
		AccessibleWhenUnlockedThisDeviceOnly, AccessibleAfterFirstUnlockThisDeviceOnly, AccessibleAlwaysThisDeviceOnly,
		AccessibleWhenPasscodeSetThisDeviceOnly}
	// mForeign is an attribute the class does not have: errSecNoSuchAttr
	// on the data protection keychain, silently dropped by the shim.
	mForeign = map[string]string{ClassGenericPassword: AttrApplicationTag, ClassInternetPassword: AttrGeneric, ClassKey: AttrAccount, ClassCertificate: AttrAccount}
	mGroups  = []string{"G1", "G2", "G3"}
	mCallers = [][]string{{"G1", "G2"}, {"G2"}, {"G3", "G1"}}
	mCodes   = []string{"1111", "2222"}
)

// canon is the model's equality: strings and bytes by bytes, numbers,
// dates.
func canon(v any) string {
	switch x := v.(type) {
	case string:
		return "b" + x
	case []byte:
		return "b" + string(x)
	case int64:
		return fmt.Sprint("n", x)
	case time.Time:
		return "d" + x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("?%T", v)
}

func (m *model) available(pdmn string) bool {
	switch m.state {
	case Unlocked:
		return true
	case Locked:
		return pdmn != AccessibleWhenUnlocked && pdmn != AccessibleWhenUnlockedThisDeviceOnly && pdmn != AccessibleWhenPasscodeSetThisDeviceOnly
	}
	return pdmn == AccessibleAlways || pdmn == AccessibleAlwaysThisDeviceOnly
}

// writable reports whether an item of pdmn can be encrypted now.
func (m *model) writable(pdmn string) Status {
	if pdmn == AccessibleWhenPasscodeSetThisDeviceOnly && m.passcode == nil {
		return ErrNotAvailable
	}
	if !m.available(pdmn) {
		return ErrInteractionNotAllowed
	}
	return 0
}

// value returns an item's attribute, counting defaults of the primary key.
func (it *mItem) value(code string) (any, bool) {
	if v, ok := it.attrs[code]; ok {
		return v, true
	}
	if slices.Contains(mPK[it.class], code) {
		v, ok := mDefaults[it.class][code]
		return v, ok
	}
	return nil, false
}

func (it *mItem) pk() string {
	s := it.class
	for _, code := range mPK[it.class] {
		v, _ := it.value(code)
		s += "|" + canon(v)
	}
	return s
}

func (it *mItem) matches(q Dict, groups []string) bool {
	if q[Class] != it.class || !slices.Contains(groups, it.attrs[AttrAccessGroup].(string)) {
		return false
	}
	for k, want := range q {
		if len(k) != 4 {
			continue
		}
		got, ok := it.value(k)
		if !ok || canon(got) != canon(want) {
			return false
		}
	}
	return true
}

// foreign applies the flavors' difference on attributes the class does not
// have: the data protection keychain refuses them, the shim drops them.
func (m *model) foreign(d Dict) (Dict, Status) {
	code := mForeign[d[Class].(string)]
	if _, ok := d[code]; !ok {
		return d, 0
	}
	if m.flavor == DataProtection {
		return nil, ErrNoSuchAttr
	}
	out := Dict{}
	for k, v := range d {
		if k != code {
			out[k] = v
		}
	}
	return out, 0
}

func explicitGroup(d Dict, groups []string) Status {
	if g, ok := d[AttrAccessGroup]; ok && !slices.Contains(groups, g.(string)) {
		return ErrMissingEntitlement
	}
	return 0
}

func (m *model) add(groups []string, d Dict) (Status, *mItem) {
	d, st := m.foreign(d)
	if st != 0 {
		return st, nil
	}
	if st := explicitGroup(d, groups); st != 0 {
		return st, nil
	}
	it := &mItem{class: d[Class].(string), attrs: map[string]any{}}
	for k, v := range d {
		if len(k) == 4 {
			it.attrs[k] = v
		}
	}
	for k, v := range mDefaults[it.class] {
		if _, ok := it.attrs[k]; !ok {
			it.attrs[k] = v
		}
	}
	if _, ok := it.attrs[AttrAccessGroup]; !ok {
		it.attrs[AttrAccessGroup] = groups[0]
	}
	if _, ok := it.attrs[AttrAccessible]; !ok {
		it.attrs[AttrAccessible] = AccessibleWhenUnlocked
		if it.class == ClassCertificate {
			it.attrs[AttrAccessible] = AccessibleAlways // dk, as on the device
		}
	}
	it.attrs[AttrCreationDate], it.attrs[AttrModificationDate] = m.now, m.now
	if st := m.writable(it.attrs[AttrAccessible].(string)); st != 0 {
		return st, nil
	}
	for _, o := range m.items {
		if o.pk() == it.pk() {
			return ErrDuplicateItem, nil
		}
	}
	if b, ok := d[ValueData].([]byte); ok {
		it.secret = b
	}
	m.items = append(m.items, it)
	return 0, it
}

func limitOf(q Dict, def int) int {
	switch q[MatchLimit] {
	case MatchLimitOne:
		return 1
	case MatchLimitAll:
		return 0
	}
	return def
}

func (m *model) search(groups []string, q Dict) (Status, []*mItem) {
	q, st := m.foreign(q)
	if st != 0 {
		return st, nil
	}
	if st := explicitGroup(q, groups); st != 0 {
		return st, nil
	}
	limit := limitOf(q, 1)
	var out []*mItem
	for _, it := range m.items {
		if !it.matches(q, groups) {
			continue
		}
		if !m.available(it.attrs[AttrAccessible].(string)) {
			if m.flavor == FileBased {
				continue // the shim prefers "not found"
			}
			return ErrInteractionNotAllowed, nil
		}
		out = append(out, it)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	if len(out) == 0 {
		return ErrItemNotFound, nil
	}
	return 0, out
}

func (m *model) update(groups []string, q, ch Dict) Status {
	q, st := m.foreign(q)
	if st != 0 {
		return st
	}
	for _, k := range []string{MatchLimit, ReturnData, ReturnAttributes} {
		// Refused in an Update query by the data protection keychain,
		// stripped by the shim's router (a parse error comes first).
		if _, ok := q[k]; ok && m.flavor == DataProtection {
			return ErrParam
		}
	}
	if st := explicitGroup(q, groups); st != 0 {
		return st
	}
	if _, ok := ch[AttrAccessControl]; ok {
		return ErrParam
	}
	if st := explicitGroup(ch, groups); st != 0 {
		return st
	}
	if p, ok := ch[AttrAccessible]; ok {
		if st := m.writable(p.(string)); st != 0 {
			return st
		}
	}
	work := make([]*mItem, len(m.items))
	for i, it := range m.items {
		c := *it
		c.attrs = maps(it.attrs)
		work[i] = &c
	}
	updated := 0
	for i, it := range work {
		if !m.items[i].matches(q, groups) {
			continue
		}
		if !m.available(it.attrs[AttrAccessible].(string)) {
			return ErrInteractionNotAllowed
		}
		for k, v := range ch {
			if k == ValueData {
				it.secret = v.([]byte)
			} else {
				it.attrs[k] = v
			}
		}
		mdat := m.now
		if old := m.items[i].attrs[AttrModificationDate].(time.Time); !mdat.After(old) {
			mdat = old.Add(time.Millisecond)
		}
		it.attrs[AttrModificationDate] = mdat
		for j, o := range work {
			if j != i && o.pk() == it.pk() {
				return ErrDuplicateItem
			}
		}
		updated++
	}
	if updated == 0 {
		return ErrItemNotFound
	}
	m.items = work
	return 0
}

func (m *model) delete(groups []string, q Dict) Status {
	q, st := m.foreign(q)
	if st != 0 {
		return st
	}
	if _, ok := q[MatchLimit]; ok && m.flavor == DataProtection {
		// A match key in a delete: a parse error, before access groups
		// are applied. (The shim honours it.)
		return ErrParam
	}
	if st := explicitGroup(q, groups); st != 0 {
		return st
	}
	limit := 0
	if m.flavor == FileBased {
		limit = 1 // the shim deletes one match
	}
	if q[MatchLimit] == MatchLimitAll { // honoured by the shim
		limit = 0
	}
	var keep []*mItem
	n := 0
	for _, it := range m.items {
		if it.matches(q, groups) && (limit == 0 || n < limit) {
			n++
			continue
		}
		keep = append(keep, it)
	}
	if n == 0 {
		return ErrItemNotFound
	}
	m.items = keep
	return 0
}

// attempt runs a passcode attempt the way the store does: throttled
// attempts neither run nor count; others count before the check.
func (m *model) attempt(guess []byte, ok func()) Status {
	if m.passcode == nil {
		if len(guess) != 0 {
			return ErrAuthFailed
		}
		ok()
		return 0
	}
	if w := protect.Delay(uint32(m.failures)); w > 0 && m.now.Before(m.last.Add(w)) {
		return ErrAuthFailed
	}
	m.failures++
	m.last = m.now
	if !bytes.Equal(guess, m.passcode) {
		return ErrAuthFailed
	}
	m.failures = 0
	ok()
	return 0
}

func (m *model) setPasscode(old, new []byte) Status {
	return m.attempt(old, func() {
		if new == nil {
			var keep []*mItem
			for _, it := range m.items {
				if it.attrs[AttrAccessible] != AccessibleWhenPasscodeSetThisDeviceOnly {
					keep = append(keep, it)
				}
			}
			m.items = keep
		}
		m.passcode = new
		m.state = Unlocked
	})
}

func (m *model) reopen() {
	m.state = Unlocked
	if m.passcode != nil {
		m.state = BeforeFirstUnlock
	}
	if protect.Delay(uint32(m.failures)) > 0 {
		m.last = m.now
	}
}

func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ---- the machine -----------------------------------------------------

type machine struct {
	t      *rapid.T
	m      *model
	db     *DB
	path   string
	opts   Options
	clock  *time.Time
	steps  *atomic.Int64
	flavor Flavor
}

func (s *machine) open() {
	db, err := Open(s.path, &s.opts)
	if err != nil {
		s.t.Fatalf("open: %v", err)
	}
	s.db = db
}

func (s *machine) caller() (*Client, []string) {
	g := rapid.SampledFrom(mCallers).Draw(s.t, "caller")
	return s.db.Client(Entitlements{KeychainAccessGroups: g}), g
}

func (s *machine) attrs(class string, label string, max int) Dict {
	d := Dict{Class: class}
	for _, code := range rapid.SliceOfNDistinct(rapid.SampledFrom(mAttrs[class]), 0, max, func(s string) string { return s }).Draw(s.t, label) {
		d[code] = rapid.SampledFrom(mValues[code]).Draw(s.t, label+" "+code)
	}
	if rapid.IntRange(0, 4).Draw(s.t, label+" names agrp") == 0 {
		d[AttrAccessGroup] = rapid.SampledFrom(mGroups).Draw(s.t, label+" agrp")
	}
	if rapid.IntRange(0, 9).Draw(s.t, label+" foreign attribute") == 0 {
		d[mForeign[class]] = "foreign"
	}
	return d
}

func (s *machine) status(what string, err error, want Status) {
	if got := StatusOf(err); got != want {
		s.t.Fatalf("%s: status %d (%v), model says %d", what, got, err, want)
	}
}

// sameItem checks a returned dictionary against its model item.
func (s *machine) sameItem(what string, got any, want *mItem, withData bool) {
	s.sameItemAs(what, got, want, withData, true)
}

// sameItemAs is sameItem for a result shaped by the flavor (shaped) or
// for an inspection listing, which shows attributes as stored.
func (s *machine) sameItemAs(what string, got any, want *mItem, withData, shaped bool) {
	d, ok := got.(Dict)
	if !ok {
		s.t.Fatalf("%s: result %T, want Dict", what, got)
	}
	for k, v := range want.attrs {
		if shaped && s.flavor == FileBased && (k == AttrIssuer || k == AttrSubject) {
			v = query.FullName(v.([]byte)) // pitfall 12: full DER Names
		}
		if canon(d[k]) != canon(v) {
			s.t.Fatalf("%s: %s = %v, model says %v", what, k, d[k], v)
		}
	}
	if withData {
		if diff := cmp.Diff(append([]byte{}, want.secret...), d[ValueData]); diff != "" {
			s.t.Fatalf("%s: secret differs from the model", what)
		}
	} else if _, has := d[ValueData]; has {
		s.t.Fatalf("%s: a secret came back without r_Data", what)
	}
}

func (s *machine) Add() {
	c, groups := s.caller()
	class := rapid.SampledFrom(mClasses).Draw(s.t, "class")
	d := s.attrs(class, "add", 4)
	if rapid.Bool().Draw(s.t, "pdmn given") {
		d[AttrAccessible] = rapid.SampledFrom(mProtections).Draw(s.t, "pdmn")
	}
	if rapid.Bool().Draw(s.t, "data") {
		d[ValueData] = []byte(rapid.StringMatching(`[a-z]{0,6}`).Draw(s.t, "secret"))
	}
	retAttrs := rapid.Bool().Draw(s.t, "r_Attributes")
	if retAttrs {
		d[ReturnAttributes] = true
	}
	want, it := s.m.add(groups, d)
	r, err := c.Add(d)
	s.status("Add "+FormatDict(d), err, want)
	if want == 0 && retAttrs {
		if s.flavor == FileBased {
			arr, ok := r.([]any)
			if !ok || len(arr) != 1 {
				s.t.Fatalf("file-based Add returned %T", r)
			}
			r = arr[0]
		}
		s.sameItem("Add result", r, it, false)
	}
}

func (s *machine) CopyMatching() {
	s.copyMatching(s.attrs(rapid.SampledFrom(mClasses).Draw(s.t, "class"), "query", 3))
}

// CopyMatchingByKey asks for a generic password by its whole lookup key
// (account and service), the query the store answers from its lookup
// cache: repeated between the writes that add, rename and delete items of
// the same few keys, a cached answer that outlived its commit shows.
func (s *machine) CopyMatchingByKey() {
	q := Dict{Class: ClassGenericPassword}
	for _, code := range []string{AttrAccount, AttrService} {
		q[code] = rapid.SampledFrom(mValues[code]).Draw(s.t, "key "+code)
	}
	if rapid.IntRange(0, 3).Draw(s.t, "key names agrp") == 0 {
		q[AttrAccessGroup] = rapid.SampledFrom(mGroups).Draw(s.t, "key agrp")
	}
	s.copyMatching(q)
}

func (s *machine) copyMatching(q Dict) {
	c, groups := s.caller()
	switch rapid.IntRange(0, 2).Draw(s.t, "limit") {
	case 1:
		q[MatchLimit] = MatchLimitOne
	case 2:
		q[MatchLimit] = MatchLimitAll
	}
	withData := rapid.Bool().Draw(s.t, "r_Data")
	q[ReturnAttributes] = true
	if withData {
		q[ReturnData] = true
	}
	withRef := rapid.IntRange(0, 3).Draw(s.t, "r_PersistentRef") == 0
	if withRef {
		q[ReturnPersistentRef] = true
	}
	want, items := s.m.search(groups, q)
	r, err := c.CopyMatching(q)
	s.status("CopyMatching "+FormatDict(q), err, want)
	if want != 0 {
		return
	}
	var arr []any
	if limitOf(q, 1) == 1 {
		arr = []any{r}
		items = items[:1]
	} else {
		arr = r.([]any)
	}
	if len(arr) != len(items) {
		s.t.Fatalf("CopyMatching %s: %d results, model says %d", FormatDict(q), len(arr), len(items))
	}
	for i := range arr {
		s.sameItem(fmt.Sprintf("CopyMatching result %d", i), arr[i], items[i], withData)
		if withRef {
			s.byReference(c, arr[i], items[i])
		}
	}
}

// byReference checks that a returned persistent reference names the same
// item: a CopyMatching by it alone returns that item, to the same caller.
func (s *machine) byReference(c *Client, got any, want *mItem) {
	ref, ok := got.(Dict)[ValuePersistentRef].([]byte)
	if !ok || len(ref) == 0 {
		s.t.Fatalf("r_PersistentRef returned no reference")
	}
	r, err := c.CopyMatching(Dict{ValuePersistentRef: ref, ReturnAttributes: true})
	if err != nil {
		s.t.Fatalf("CopyMatching by a returned persistent reference: %v", err)
	}
	s.sameItem("CopyMatching by persistent reference", r, want, false)
}

func (s *machine) Update() {
	c, groups := s.caller()
	q := s.attrs(rapid.SampledFrom(mClasses).Draw(s.t, "class"), "query", 2)
	ch := Dict{}
	switch rapid.IntRange(0, 5).Draw(s.t, "change") {
	case 0:
		code := rapid.SampledFrom(mAttrs[q[Class].(string)]).Draw(s.t, "attribute")
		ch[code] = rapid.SampledFrom(mValues[code]).Draw(s.t, "value")
	case 1:
		ch[ValueData] = []byte(rapid.StringMatching(`[a-z]{0,6}`).Draw(s.t, "secret"))
	case 2:
		ch[AttrAccessible] = rapid.SampledFrom(mProtections).Draw(s.t, "pdmn")
	case 3:
		ch[AttrAccessGroup] = rapid.SampledFrom(mGroups).Draw(s.t, "agrp")
	case 4:
		ch[AttrAccessControl] = AccessibleAlways
	case 5:
		code := mPK[q[Class].(string)][0]
		ch[code] = rapid.SampledFrom(mValues[code]).Draw(s.t, "key value")
	}
	if _, foreign := q[mForeign[q[Class].(string)]]; !foreign && rapid.IntRange(0, 3).Draw(s.t, "update with a stripped key") == 0 {
		// A match or return key in an Update query (kept apart from a
		// foreign attribute, as in Delete).
		k := rapid.SampledFrom([]string{MatchLimit, ReturnData, ReturnAttributes}).Draw(s.t, "update key")
		q[k] = map[string]any{MatchLimit: MatchLimitAll, ReturnData: true, ReturnAttributes: true}[k]
	}
	want := s.m.update(groups, q, ch)
	s.status("Update "+FormatDict(q)+" "+FormatDict(ch), c.Update(q, ch), want)
}

func (s *machine) Delete() {
	c, groups := s.caller()
	q := s.attrs(rapid.SampledFrom(mClasses).Draw(s.t, "class"), "query", 3)
	if _, foreign := q[mForeign[q[Class].(string)]]; !foreign && rapid.IntRange(0, 2).Draw(s.t, "delete with m_Limit") == 0 {
		// (Kept apart from a foreign attribute: which of two bad keys is
		// reported depends on their order, which the model leaves out.)
		q[MatchLimit] = rapid.SampledFrom([]string{MatchLimitOne, MatchLimitAll}).Draw(s.t, "delete limit")
	}
	want := s.m.delete(groups, q)
	s.status("Delete "+FormatDict(q), c.Delete(q), want)
}

func (s *machine) Lock() {
	s.status("Lock", s.db.Lock(), 0)
	if s.m.state == Unlocked {
		s.m.state = Locked
	}
}

func (s *machine) Unlock() {
	guess := []byte(nil)
	if s.m.passcode != nil || rapid.IntRange(0, 3).Draw(s.t, "guess without passcode") == 0 {
		guess = []byte(rapid.SampledFrom(mCodes).Draw(s.t, "guess"))
	}
	want := s.m.attempt(guess, func() { s.m.state = Unlocked })
	s.status(fmt.Sprintf("Unlock (%d failures)", s.m.failures), s.db.Unlock(guess), want)
}

func (s *machine) SetPasscode() {
	var old []byte
	if s.m.passcode != nil {
		old = []byte(rapid.SampledFrom(mCodes).Draw(s.t, "old"))
	}
	var new []byte
	if rapid.IntRange(0, 3).Draw(s.t, "remove") != 0 {
		new = []byte(rapid.SampledFrom(mCodes).Draw(s.t, "new"))
	}
	want := s.m.setPasscode(old, new)
	s.status("SetPasscode", s.db.SetPasscode(old, new), want)
}

func (s *machine) Reopen() {
	if err := s.db.Close(); err != nil {
		s.t.Fatal(err)
	}
	s.m.reopen()
	s.open()
}

func (s *machine) Tick() {
	d := rapid.SampledFrom([]time.Duration{0, time.Second, 2 * time.Minute, 20 * time.Minute, 2 * time.Hour}).Draw(s.t, "clock")
	*s.clock = s.clock.Add(d)
	s.m.now = *s.clock
}

// Check: the state, the integrity check, and every item against the model.
func (s *machine) Check() {
	if s.db.State() != s.m.state {
		s.t.Fatalf("state %v, model says %v", s.db.State(), s.m.state)
	}
	rep, err := s.db.Check()
	if err != nil || !rep.OK() {
		s.t.Fatalf("integrity check: %v %v", err, rep.Problems)
	}
	for _, class := range mClasses {
		var want []*mItem
		for _, it := range s.m.items {
			if it.class == class {
				want = append(want, it)
			}
		}
		i := 0
		err := s.db.Items(class, true, func(d Dict, err error) bool {
			if i >= len(want) {
				s.t.Fatalf("%s: more items than the model", class)
			}
			if s.m.available(want[i].attrs[AttrAccessible].(string)) {
				if err != nil {
					s.t.Fatalf("%s item %d: %v", class, i, err)
				}
				s.sameItemAs(fmt.Sprintf("%s item %d", class, i), d, want[i], true, false)
			} else if StatusOf(err) != ErrInteractionNotAllowed {
				s.t.Fatalf("%s item %d: readable although its class key is unavailable (%v)", class, i, err)
			}
			i++
			return true
		})
		if err != nil || i != len(want) {
			s.t.Fatalf("%s: %d items, model has %d (%v)", class, i, len(want), err)
		}
	}
}

func runModel(t *testing.T, flavor Flavor, steps *atomic.Int64) {
	rapid.Check(t, func(rt *rapid.T) {
		dir, err := os.MkdirTemp("", "secitem-model")
		if err != nil {
			rt.Fatal(err)
		}
		rt.Cleanup(func() { os.RemoveAll(dir) })
		clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		s := &machine{t: rt, path: filepath.Join(dir, "m.db"), clock: &clock, steps: steps, flavor: flavor,
			m: &model{flavor: flavor, state: Unlocked, now: clock}}
		s.opts = Options{Flavor: flavor, Device: protect.NewStaticDevice(bytes.Repeat([]byte{9}, 32)), PasscodeCost: cheap,
			Now: func() time.Time { return *s.clock }}
		s.open()
		rt.Cleanup(func() { s.db.Close() })
		actions := map[string]func(){
			"Add": s.Add, "CopyMatching": s.CopyMatching, "CopyMatchingByKey": s.CopyMatchingByKey, "Update": s.Update, "Delete": s.Delete,
			"Lock": s.Lock, "Unlock": s.Unlock, "SetPasscode": s.SetPasscode, "Reopen": s.Reopen, "Tick": s.Tick,
		}
		weights := []string{"Add", "Add", "Add", "CopyMatching", "CopyMatching", "CopyMatchingByKey", "CopyMatchingByKey", "Update", "Delete", "Lock", "Unlock", "SetPasscode", "Reopen", "Tick"}
		n := rapid.IntRange(100, 160).Draw(rt, "steps")
		s.Check()
		for i := 0; i < n; i++ {
			actions[rapid.SampledFrom(weights).Draw(rt, "action")]()
			steps.Add(1)
			if i%10 == 9 || i == n-1 {
				s.Check()
			}
		}
	})
}

func TestModelDataProtection(t *testing.T) {
	var steps atomic.Int64
	runModel(t, DataProtection, &steps)
	t.Logf("%d model steps", steps.Load())
	if !testing.Short() && steps.Load() < 10_000 {
		t.Fatalf("only %d model steps; want at least 10,000", steps.Load())
	}
}

func TestModelFileBased(t *testing.T) {
	var steps atomic.Int64
	runModel(t, FileBased, &steps)
	t.Logf("%d model steps", steps.Load())
}
