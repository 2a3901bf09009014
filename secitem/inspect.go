package secitem

import (
	"sync/atomic"

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
// Items reads the store a page of items at a time and calls fn with no
// lock or transaction held, so fn may call any DB method. The listing is
// therefore not a snapshot: an item added or deleted while it runs may or
// may not be listed; each item is listed at most once.
//
// Items is for inspection and backup tools; most users won't need it. It
// bypasses access groups, so never expose it to a caller that should see
// only its own.
func (db *DB) Items(class string, withSecret bool, fn func(item Dict, err error) bool) error {
	c := schema.Lookup(class)
	if c == nil || c.IsIdentity() {
		return newErr("Items", ErrNoSuchClass, "items are listed per stored class: genp, inet, cert or keys")
	}
	plan := &query.Plan{Op: query.Search, Class: c, Return: query.ReturnAttributes}
	if withSecret {
		plan.Return |= query.ReturnData
	}
	type entry struct {
		d   Dict
		err error
	}
	// Items are read a page at a time and handed to fn with no lock or
	// transaction held, so fn may call back into the DB (even Lock or
	// Close) without deadlocking.
	var after uint64
	for {
		page := make([]entry, 0, itemsPage)
		var last uint64
		err := db.page(func(tx *store.Tx) error {
			return tx.Find(store.Query{Class: c, After: after}, func(r *store.Record) (bool, error) {
				last = r.Row
				attrs, secret, err := tx.Open(r, withSecret)
				if err != nil {
					d := Dict{Class: class, ValuePersistentRef: r.PersistentRef()}
					page = append(page, entry{d, &Error{Op: "Items", Status: Status(status.Of(err)), Detail: errDetail(err)}})
				} else {
					d := query.AttributeDict[Dict](plan, &query.Item{Class: class, Attrs: attrs, Secret: secret})
					d[Class] = class
					d[ValuePersistentRef] = r.PersistentRef()
					page = append(page, entry{d, nil})
				}
				return len(page) < itemsPage, nil
			})
		})
		if err != nil {
			return wrapErr("Items", err)
		}
		for _, e := range page {
			if !fn(e.d, e.err) {
				return nil
			}
		}
		if len(page) < itemsPage {
			return nil
		}
		after = last
	}
}

// itemsPage is how many items Items reads per transaction.
const itemsPage = 256

// page runs fn in a read transaction inside the gate.
func (db *DB) page(fn func(*store.Tx) error) error {
	leave, err := db.enter()
	if err != nil {
		return err
	}
	defer leave()
	return db.st.View(fn)
}

// progressPump delivers a long operation's progress counts to a caller's
// function on a goroutine of its own, so the operation never waits for it
// while holding a lock or a transaction: the function may call back into
// the DB. Counts only grow; when the function is slower than the
// operation, intermediate counts are skipped, but the last one is always
// delivered, before finish returns. A panic in the function stops further
// calls and is raised again by finish, in the caller's goroutine.
type progressPump struct {
	fn       func(int)
	latest   atomic.Int64
	stopped  atomic.Bool // the function panicked
	wake     chan struct{}
	done     chan struct{}
	panicked any
}

func startProgress(fn func(int)) *progressPump {
	p := &progressPump{fn: fn, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go p.run()
	return p
}

// report records a new count without blocking. A nil pump ignores it.
func (p *progressPump) report(n int) {
	if p == nil {
		return
	}
	p.latest.Store(int64(n))
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *progressPump) run() {
	defer close(p.done)
	sent := int64(0)
	deliver := func() {
		n := p.latest.Load()
		if n == sent {
			return
		}
		sent = n
		defer func() {
			if r := recover(); r != nil {
				p.panicked = r
				p.stopped.Store(true)
			}
		}()
		p.fn(int(n))
	}
	for range p.wake {
		if deliver(); p.stopped.Load() {
			break
		}
	}
	if !p.stopped.Load() {
		deliver()
	}
	for range p.wake { // after a panic, wait for finish to close wake
	}
}

// failed reports whether the caller's function has panicked, so the
// operation can stop (and roll back) early. A nil pump never fails.
func (p *progressPump) failed() bool { return p != nil && p.stopped.Load() }

// finish waits for the last count to be delivered and re-raises a panic
// from the caller's function. Call it with no lock held. A nil pump
// returns at once.
func (p *progressPump) finish() {
	if p == nil {
		return
	}
	close(p.wake)
	<-p.done
	if p.panicked != nil {
		panic(p.panicked)
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
	// LoggedPostings counts the index postings still in the posting log
	// (appended by recent commits, not yet merged into the index); a
	// commit that finds more than MergeAt merges those of one sixteenth
	// of the tag space, and waits for it. docs/semantics.md, "The posting
	// log".
	LoggedPostings, MergeAt int
	// LookupCacheEntries and LookupCacheBytes are the size of this
	// handle's lookup cache, which remembers where the items asked for
	// by their whole primary key were found (two entries per item or more;
	// Options.LookupCacheEntries; 0 when off). LookupCacheFilled counts
	// the entries written since the table was made (some may no longer
	// be usable: a later write changed what they remember).
	// docs/semantics.md, "The lookup cache".
	LookupCacheEntries, LookupCacheFilled int
	LookupCacheBytes                      int64
}

// Stats returns the store's statistics. Most users won't need it.
func (db *DB) Stats() (Stats, error) {
	leave, err := db.enter()
	if err != nil {
		return Stats{}, wrapErr("Stats", err)
	}
	st, err := db.st.Stats()
	leave()
	if err != nil {
		return Stats{}, wrapErr("Stats", err)
	}
	out := Stats{FileSize: st.FileSize, PageSize: st.PageSize, FreePages: st.FreePages, PendingPages: st.PendingPages, Items: st.Items, RecordBytes: st.RecordBytes, Groups: map[string]int{},
		LoggedPostings: st.LoggedPostings, MergeAt: st.MergeAt,
		LookupCacheEntries: st.LookupCacheEntries, LookupCacheFilled: st.LookupCacheFilled, LookupCacheBytes: st.LookupCacheBytes}
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
