package secitem

import (
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/query"
	"github.com/secitemdb/secitemdb/schema"
)

// Items calls fn for every stored item of class ("genp", "inet", "cert" or
// "keys"), whatever its access group, synchronizable or not, tombstones
// included, in creation order. item holds the class, every attribute,
// v_PersistentRef, and with withSecret the secrets (v_Data and the
// internet password extras). An item whose class key is unavailable comes
// with err ErrInteractionNotAllowed and only its class and persistent
// reference; a damaged one with ErrDecode. fn returns false to stop.
//
// Items is for inspection and backup tools; most users won't need it. It
// bypasses access groups, so never expose it to a caller that should see
// only its own.
func (db *DB) Items(class string, withSecret bool, fn func(item Dict, err error) bool) error {
	leave, err := db.enter()
	if err != nil {
		return wrapErr("Items", err)
	}
	defer leave()
	c := schema.Lookup(class)
	if c == nil || c.IsIdentity() {
		return newErr("Items", ErrNoSuchClass, "items are listed per stored class: genp, inet, cert or keys")
	}
	plan := &query.Plan{Op: query.Search, Class: c, Return: query.ReturnAttributes}
	if withSecret {
		plan.Return |= query.ReturnData
	}
	var cb callback
	err = db.st.View(func(tx *store.Tx) error {
		return tx.Find(store.Query{Class: c}, func(r *store.Record) (bool, error) {
			attrs, secret, err := tx.Open(r, withSecret)
			if err != nil {
				d := Dict{Class: class, ValuePersistentRef: r.PersistentRef()}
				return cb.call(func() bool { return fn(d, &Error{Op: "Items", Status: Status(status.Of(err)), Detail: errDetail(err)}) }), nil
			}
			d := query.AttributeDict[Dict](plan, &query.Item{Class: class, Attrs: attrs, Secret: secret})
			d[Class] = class
			d[ValuePersistentRef] = r.PersistentRef()
			return cb.call(func() bool { return fn(d, nil) }), nil
		})
	})
	cb.repanic()
	return wrapErr("Items", err)
}

// callback runs a caller's function inside a store transaction. A panic
// in it must reach the caller as a panic, not be mistaken by the store for
// a damaged file: call stops the iteration and keeps the panic, repanic
// raises it again once the transaction is over.
type callback struct{ panicked any }

func (c *callback) call(fn func() bool) (more bool) {
	defer func() {
		if p := recover(); p != nil {
			c.panicked, more = p, false
		}
	}()
	return fn()
}

func (c *callback) repanic() {
	if c.panicked != nil {
		panic(c.panicked)
	}
}

func errDetail(err error) string {
	if se, ok := err.(*status.Error); ok {
		return se.Detail
	}
	return err.Error()
}

// CheckReport is the result of Check.
type CheckReport struct {
	// Items counts the items that opened and authenticated, by class and
	// protection class.
	Items map[string]map[string]int
	// Locked counts items whose class key was unavailable: only their
	// structure was checked.
	Locked int
	// Problems names every damaged, stale or inconsistent item and every
	// structural error of the file.
	Problems []string
}

// OK reports whether Check found no problem.
func (r CheckReport) OK() bool { return len(r.Problems) == 0 }

// Check verifies the whole store without changing it: the file's
// structure, every item opened and authenticated (as far as the lock state
// allows), the keyed index and the version table. Most users won't need
// it; `secitemctl check` prints it.
func (db *DB) Check() (CheckReport, error) {
	leave, err := db.enter()
	if err != nil {
		return CheckReport{}, wrapErr("Check", err)
	}
	defer leave()
	rep, err := db.st.Check()
	if err != nil {
		return CheckReport{}, wrapErr("Check", err)
	}
	out := CheckReport{Items: rep.Items, Locked: rep.Locked}
	for _, p := range rep.Problems {
		out.Problems = append(out.Problems, p.String())
	}
	return out, nil
}

// Stats describe a store's file and contents.
type Stats struct {
	FileSize     int64
	PageSize     int
	FreePages    int // pages bbolt can reuse
	PendingPages int // pages freed by transactions still open
	// Items counts items by class, then by protection class (read without
	// decrypting).
	Items map[string]map[string]int
	// RecordBytes is the size of the stored records alone: what the file
	// would hold without bbolt's pages, the keyed index and the version
	// table.
	RecordBytes int64
	// Groups counts readable items by access group; Unreadable counts the
	// items whose class key was unavailable (or that failed
	// authentication), whose group cannot be known.
	Groups     map[string]int
	Unreadable int
}

// Stats returns the store's statistics. Most users won't need it.
func (db *DB) Stats() (Stats, error) {
	st, err := db.st.Stats()
	if err != nil {
		return Stats{}, wrapErr("Stats", err)
	}
	out := Stats{FileSize: st.FileSize, PageSize: st.PageSize, FreePages: st.FreePages, PendingPages: st.PendingPages, Items: st.Items, RecordBytes: st.RecordBytes, Groups: map[string]int{}}
	for _, c := range schema.Classes() {
		err := db.Items(c.Code, false, func(item Dict, err error) bool {
			if err != nil {
				out.Unreadable++
			} else if g, ok := item[AttrAccessGroup].(string); ok {
				out.Groups[g]++
			}
			return true
		})
		if err != nil {
			return Stats{}, err
		}
	}
	return out, nil
}
