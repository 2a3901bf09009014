package secitem_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	. "github.com/secitemdb/secitemdb/secitem"
)

// reasons returns the reason kinds of the explained item whose summary
// contains name, and the item.
func explained(t *testing.T, ex *Explanation, name string) ExplainedItem {
	t.Helper()
	for _, it := range ex.Items {
		if strings.Contains(it.Summary, name) {
			return it
		}
	}
	t.Fatalf("no explained item %q among %d", name, len(ex.Items))
	return ExplainedItem{}
}

func kinds(it ExplainedItem) string {
	var k []string
	for _, r := range it.Reasons {
		k = append(k, r.Kind+":"+r.Attr)
	}
	return strings.Join(k, " ")
}

func mustExplain(t *testing.T, c interface {
	Explain(Dict) (*Explanation, error)
}, q Dict) *Explanation {
	t.Helper()
	ex, err := c.Explain(q)
	if err != nil {
		t.Fatalf("Explain: %v", err)
	}
	return ex
}

func TestExplainReasons(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "alice"))
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "synced", AttrSynchronizable, true))
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "dead", AttrTombstone, 1))

	ex := mustExplain(t, db, genp(AttrService, "s", AttrAccount, "bob", AttrLabel, "L"))
	if ex.Matches != 0 || len(ex.Items) != 3 {
		t.Fatalf("%d matches, %d items", ex.Matches, len(ex.Items))
	}
	alice := explained(t, ex, `"alice"`)
	if got := kinds(alice); got != "attribute:labl attribute:acct" {
		t.Fatalf("alice: %s", got)
	}
	if txt := alice.Reasons[1].Text; !strings.Contains(txt, `the query has "bob"`) || !strings.Contains(txt, `the item "alice"`) {
		t.Errorf("acct reason: %s", txt)
	}
	if txt := alice.Reasons[0].Text; !strings.Contains(txt, "the item not set") {
		t.Errorf("labl reason: %s", txt)
	}
	if got := kinds(explained(t, ex, `"synced"`)); got != "attribute:labl attribute:acct sync:sync" {
		t.Errorf("synced: %s", got)
	}
	if got := kinds(explained(t, ex, `"dead"`)); got != "attribute:labl attribute:acct tomb:tomb" {
		t.Errorf("dead: %s", got)
	}
	if !strings.Contains(strings.Join(ex.Implicit, "\n"), "sync = 0") || !strings.Contains(strings.Join(ex.Implicit, "\n"), "tomb = 0") {
		t.Errorf("implicit filters: %q", ex.Implicit)
	}

	// The synchronizable item matches once the query says syna.
	ex = mustExplain(t, db, genp(AttrService, "s", AttrAccount, "synced", AttrSynchronizable, AttrSynchronizableAny))
	if ex.Matches != 1 || !ex.Items[0].Matches {
		t.Fatalf("syna: %d matches, first %+v", ex.Matches, ex.Items[0])
	}
}

// Near misses come first: fewest reasons first.
func TestExplainNearMissesFirst(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "x", AttrAccount, "far", AttrLabel, "other"))
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "near", AttrLabel, "L"))
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "match", AttrLabel, "L", AttrComment, "c"))
	ex := mustExplain(t, db, genp(AttrService, "s", AttrAccount, "match", AttrLabel, "L"))
	var order []int
	for _, it := range ex.Items {
		order = append(order, len(it.Reasons))
	}
	if ex.Matches != 1 || !ex.Items[0].Matches || len(order) != 3 || order[1] != 1 || order[2] != 3 {
		t.Fatalf("order of reasons counts: %v (matches %d)", order, ex.Matches)
	}
}

// A caller's Explain lists only items in its own groups; the operator's
// ExplainAs lists every item and names the group a caller lacks.
func TestExplainAccessGroups(t *testing.T) {
	db := openTest(t, nil)
	v1 := db.Client(Entitlements{KeychainAccessGroups: []string{"SKMME9E2Y8.groupA", "SKMME9E2Y8.groupB"}})
	mustAdd(t, v1, genp(AttrService, "s", AttrAccount, "waffles"))
	v2 := Entitlements{KeychainAccessGroups: []string{"SKMME9E2Y8.groupB"}}
	q := genp(AttrService, "s", AttrAccount, "waffles")
	ex := mustExplain(t, db.Client(v2), q)
	if len(ex.Items) != 0 {
		t.Fatalf("a caller was told about %d items outside its groups", len(ex.Items))
	}
	ex, err := db.ExplainAs(v2, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Items) != 1 || kinds(ex.Items[0]) != "group:agrp" {
		t.Fatalf("operator view: %+v", ex.Items)
	}
	want := `access group "SKMME9E2Y8.groupA" is not in this caller's list ["SKMME9E2Y8.groupB"]`
	if ex.Items[0].Reasons[0].Text != want {
		t.Errorf("group reason %q, want %q", ex.Items[0].Reasons[0].Text, want)
	}
}

// Pitfall 9: while locked, Explain still decides from the keyed tags; an
// item that matches is reported as locked, with the status CopyMatching
// gives in each flavor, and the values it cannot show are named.
func TestExplainWhileLocked(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		mustAdd(t, db, genp(AttrService, "s", AttrAccount, "token", AttrAccessible, AccessibleWhenUnlocked, ValueData, []byte("pw")))
		wantStatus(t, db.Lock(), 0)
		_, err := db.CopyMatching(genp(AttrService, "s", AttrAccount, "token", ReturnData, true))
		ex := mustExplain(t, db, genp(AttrService, "s", AttrAccount, "token"))
		if len(ex.Items) != 1 || kinds(ex.Items[0]) != "locked:" {
			t.Fatalf("locked item: %+v", ex.Items)
		}
		txt := ex.Items[0].Reasons[0].Text
		wantCode := "-25308"
		if fb {
			wantCode = "-25300"
		}
		if !strings.Contains(txt, wantCode) || !strings.Contains(txt, "pdmn ak") || !strings.Contains(txt, "Locked") {
			t.Errorf("locked reason: %s", txt)
		}
		if !strings.Contains(err.Error(), wantCode) {
			t.Errorf("CopyMatching said %v; the explanation says %s", err, wantCode)
		}
		ex = mustExplain(t, db, genp(AttrService, "s", AttrAccount, "other"))
		if kinds(ex.Items[0]) != "attribute:acct" || !strings.Contains(ex.Items[0].Reasons[0].Text, "hidden") || len(ex.Undecided) == 0 {
			t.Errorf("a differing value of a locked item: %+v, undecided %q", ex.Items[0], ex.Undecided)
		}
	})
}

func TestExplainDamagedAndMatchKeys(t *testing.T) {
	db := openTest(t, nil)
	pref := mustAdd(t, db, genp(AttrService, "s", AttrAccount, "a", ReturnPersistentRef, true)).([]byte)
	raw, err := db.RawRecordForTest(pref)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	if err := db.PutRawRecordForTest(pref, raw); err != nil {
		t.Fatal(err)
	}
	ex := mustExplain(t, db, genp(AttrService, "s", AttrAccount, "a"))
	if len(ex.Items) != 1 || kinds(ex.Items[0]) != "damaged:" {
		t.Fatalf("damaged item: %+v", ex.Items)
	}
	// A delete needs no key, so it removes a damaged item its filters
	// match, and the explanation says so (and where they do not, why).
	ex, err = db.ExplainOperation(OpDelete, genp(AttrService, "s", AttrAccount, "a"))
	if err != nil || ex.Matches != 1 || len(ex.Items[0].Notes) == 0 || !strings.Contains(ex.Items[0].Notes[0], "damaged") {
		t.Fatalf("a damaged item under Delete: %+v, %v", ex, err)
	}
	ex, _ = db.ExplainOperation(OpDelete, genp(AttrService, "s", AttrAccount, "b"))
	if ex.Matches != 0 || kinds(ex.Items[0]) != "attribute:acct" || !strings.Contains(ex.Items[0].Reasons[0].Text, "damaged") {
		t.Fatalf("a damaged item a delete misses: %+v", ex.Items)
	}
	wantStatus(t, db.Delete(genp(AttrService, "s", AttrAccount, "a")), 0) // as explained

	mustAdd(t, db, dictOf(ClassInternetPassword, AttrServer, "www.example.com"))
	ex = mustExplain(t, db, dictOf(ClassInternetPassword, MatchHostOrSubdomainOfHost, "example.org"))
	if len(ex.Items) != 1 || kinds(ex.Items[0]) != "match:" || !strings.Contains(ex.Items[0].Reasons[0].Text, MatchHostOrSubdomainOfHost) {
		t.Fatalf("match key: %+v", ex.Items)
	}
	ex = mustExplain(t, db, dictOf(ClassInternetPassword, MatchHostOrSubdomainOfHost, "example.com"))
	if ex.Matches != 1 {
		t.Fatalf("subdomain: %+v", ex.Items)
	}
}

// Pitfall 1: the search misses only on a non-unique attribute; Explain
// says so and warns that adding the same dictionary would collide.
func TestExplainPitfallQueryVersusUniqueness(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "AYS", AttrAccount, "mrgumby", AttrGeneric, "A"))
	q := genp(AttrService, "AYS", AttrAccount, "mrgumby", AttrGeneric, "SecItemHints")
	_, err := db.CopyMatching(q)
	wantStatus(t, err, ErrItemNotFound)
	ex := mustExplain(t, db, q)
	it := ex.Items[0]
	if kinds(it) != "attribute:gena" || !strings.Contains(it.Reasons[0].Text, `the item "A"`) {
		t.Fatalf("reasons: %+v", it.Reasons)
	}
	if len(it.Notes) != 1 || !strings.Contains(it.Notes[0], "errSecDuplicateItem") {
		t.Fatalf("notes: %q", it.Notes)
	}
	add := genp(AttrService, "AYS", AttrAccount, "mrgumby", AttrGeneric, "SecItemHints", ValueData, []byte("opendoor"))
	_, err = db.Add(add)
	wantStatus(t, err, ErrDuplicateItem) // the note was right
}

// Pitfall 7: version 2 of the app lost groupA; the operator's view names it.
func TestExplainPitfallEntitlementChange(t *testing.T) {
	db := openTest(t, nil)
	v1 := db.Client(Entitlements{KeychainAccessGroups: []string{"SKMME9E2Y8.groupA", "SKMME9E2Y8.groupB"}})
	mustAdd(t, v1, genp(AttrService, "varnish", AttrAccount, "me"))
	v2 := Entitlements{KeychainAccessGroups: []string{"SKMME9E2Y8.groupB"}, ApplicationIdentifier: "SKMME9E2Y8.com.example.waffle-varnisher"}
	q := genp(AttrService, "varnish", AttrAccount, "me")
	_, err := db.Client(v2).CopyMatching(q)
	wantStatus(t, err, ErrItemNotFound)
	ex, err := db.ExplainAs(v2, q)
	if err != nil {
		t.Fatal(err)
	}
	if kinds(ex.Items[0]) != "group:agrp" || !strings.Contains(ex.Items[0].Reasons[0].Text, `"SKMME9E2Y8.groupA" is not in this caller's list`) {
		t.Fatalf("reasons: %+v", ex.Items[0].Reasons)
	}
}

// Pitfall 8: query confusion (service and account swapped): Explain shows
// both values side by side instead of a bare -25300.
func TestExplainPitfallQueryConfusion(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "AYS", AttrAccount, "mrgumby"))
	ex := mustExplain(t, db, genp(AttrService, "mrgumby", AttrAccount, "AYS"))
	it := ex.Items[0]
	if kinds(it) != "attribute:acct attribute:svce" {
		t.Fatalf("reasons: %+v", it.Reasons)
	}
	if !strings.Contains(it.Reasons[0].Text, `the query has "AYS", the item "mrgumby"`) ||
		!strings.Contains(it.Reasons[1].Text, `the query has "mrgumby", the item "AYS"`) {
		t.Errorf("texts: %q / %q", it.Reasons[0].Text, it.Reasons[1].Text)
	}
}

// Secrets never appear in an explanation, even when the query carries
// v_Data (which a search ignores).
func TestExplainHidesSecrets(t *testing.T) {
	db := openTest(t, nil)
	mustAdd(t, db, genp(AttrService, "s", AttrAccount, "a", ValueData, []byte("canary-secret-1")))
	ex := mustExplain(t, db, genp(AttrService, "s", AttrAccount, "b", ValueData, []byte("canary-secret-2")))
	b, err := json.Marshal(ex)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "canary-secret") {
		t.Fatal("an explanation holds a secret")
	}
}

func TestExplainRefusesIdentityAndBadQueries(t *testing.T) {
	db := openTest(t, nil)
	_, err := db.Explain(Dict{Class: ClassIdentity})
	wantStatus(t, err, ErrParam)
	_, err = db.Explain(Dict{Class: "nope"})
	wantStatus(t, err, ErrNoSuchClass)
	_, err = db.Explain(genp(AttrAccessGroup, "not-mine"))
	wantStatus(t, err, ErrMissingEntitlement)
}

// An Update or Delete query is explained as that operation parses it: a
// return key in an Update query is errSecParam (ignored by the file-based
// flavor, as by its router), every match counts (no limit of one), and a
// Delete, which needs no key, is said to remove a locked item.
func TestExplainOperation(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		mustAdd(t, db, genp(AttrService, "s", AttrAccount, "a", AttrAccessible, AccessibleWhenUnlocked))
		mustAdd(t, db, genp(AttrService, "s", AttrAccount, "b"))
		_, err := db.ExplainOperation(OpUpdate, genp(AttrService, "s", ReturnData, true))
		uerr := db.Update(genp(AttrService, "s", ReturnData, true), Dict{AttrLabel: "x"})
		if fb {
			wantStatus(t, err, 0)
		} else {
			wantStatus(t, err, ErrParam)
		}
		if StatusOf(err) != StatusOf(uerr) {
			t.Errorf("Explain said %v where Update said %v", err, uerr)
		}
		ex, err := db.ExplainOperation(OpDelete, genp(AttrService, "s"))
		if err != nil || ex.Operation != OpDelete || ex.Matches != 2 {
			t.Fatalf("delete explanation: %+v, %v", ex, err)
		}
		wantStatus(t, db.Lock(), 0)
		ex, err = db.ExplainOperation(OpDelete, genp(AttrService, "s", AttrAccount, "a"))
		if err != nil || ex.Matches != 1 || len(ex.Items[0].Notes) == 0 || !strings.Contains(ex.Items[0].Notes[0], "would be deleted") {
			t.Fatalf("a locked item under Delete: %+v, %v", ex, err)
		}
		ex, _ = db.ExplainOperation(OpCopyMatching, genp(AttrService, "s", AttrAccount, "a"))
		if ex.Matches != 0 || kinds(ex.Items[0]) != "locked:" {
			t.Fatalf("the same item under CopyMatching: %+v", ex.Items)
		}
		// Update fails whole on a locked item, in both flavors.
		ex, _ = db.ExplainOperation(OpUpdate, genp(AttrService, "s", AttrAccount, "a"))
		wantStatus(t, db.Update(genp(AttrService, "s", AttrAccount, "a"), Dict{AttrLabel: "x"}), ErrInteractionNotAllowed)
		if txt := ex.Items[0].Reasons[0].Text; !strings.Contains(txt, "Update answers errSecInteractionNotAllowed (-25308)") {
			t.Fatalf("the locked item under Update: %s", txt)
		}
		_, err = db.ExplainOperation("SecItemAdd", genp(AttrService, "s"))
		wantStatus(t, err, ErrParam)
	})
}

// Pitfall 2: the file-based keychain drops an attribute the class does not
// have, so a query by it matches by its other attributes alone; Explain
// names the dropped key, in both flavors' terms.
func TestExplainNamesIgnoredKeys(t *testing.T) {
	bothFlavors(t, func(t *testing.T, db *DB, fb bool) {
		q := dictOf(ClassCertificate, AttrApplicationTag, "user2", "nleg", true)
		ex, err := db.Explain(q)
		if !fb {
			wantStatus(t, err, ErrNoSuchAttr) // as CopyMatching
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(ex.Ignored, AttrApplicationTag) || !slices.Contains(ex.Ignored, "nleg") {
			t.Fatalf("ignored keys %q, want atag and nleg", ex.Ignored)
		}
	})
}
