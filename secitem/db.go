package secitem

import (
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/query"
)

// Dict is a keychain dictionary: attribute codes and keys such as
// [AttrService] or [ReturnData] mapped to values. See the package
// documentation for the accepted Go value types.
type Dict map[string]any

// Flavor selects which keychain a store behaves like.
type Flavor int

// The flavors.
const (
	// DataProtection is the iOS data protection keychain (the default).
	DataProtection Flavor = iota
	// FileBased reproduces the macOS file-based keychain shim's documented
	// differences; everything else is the same.
	FileBased
)

// String returns the flavor's name.
func (f Flavor) String() string {
	if f == FileBased {
		return "file-based"
	}
	return "data-protection"
}

// DefaultAccessGroup is the one access group of the default caller when
// Options.Entitlements is empty.
const DefaultAccessGroup = "secitemdb.default"

// Options configure Open. The zero value is valid.
type Options struct {
	// Flavor is DataProtection (default) or FileBased.
	Flavor Flavor
	// Entitlements are those of the default caller, used by DB's own
	// Add, CopyMatching, Update and Delete. When empty, the default caller
	// has the single access group DefaultAccessGroup.
	Entitlements Entitlements
	// Logger, when set, receives a trace of every call: the operation,
	// the dictionary in (secrets redacted), the result's shape and the
	// status.
	Logger *slog.Logger
	// Timeout is how long Open waits for another process's file lock;
	// 0 means one second. Open never waits forever.
	Timeout time.Duration

	// Device supplies the device secret that every class key depends on.
	// Nil means a file beside the database, path + ".device" (mode 0600,
	// created with the store). Keep it apart from copies of the database:
	// the database file alone opens nothing.
	Device protect.Device
	// Now is the clock for cdat and mdat; nil means time.Now.
	Now func() time.Time
	// ReadOnly opens the store for inspection: writes fail with
	// ErrReadOnly, and other processes may read it at the same time.
	ReadOnly bool
	// PasscodeCost is the argon2id cost of passcodes set by SetPasscode;
	// nil means protect.DefaultKDFCost (64 MiB, calibrated to about
	// 180 ms on this machine). Tests set a cheap cost here. The cost is
	// stored with the passcode, so changing it affects only new passcodes.
	PasscodeCost *protect.KDFCost
	// SecureEnclave supplies the secret of the emulated Secure Enclave,
	// which wraps the private bytes of token keys (tkid
	// "com.apple.setoken") on top of their class key. Nil means a file
	// beside the database, path + ".setoken", created with the first token
	// key. Erasing it leaves token keys listed but unusable for good.
	SecureEnclave protect.Device
	// WipeAfterFailedAttempts erases the store (every item, every key)
	// after 10 consecutive wrong passcodes, like the device's "Erase Data"
	// setting. Off by default.
	WipeAfterFailedAttempts bool
	// RollbackAnchor, when set, detects the file being rolled back as a
	// whole (replaced by an older copy of itself): every commit advances
	// the anchor to the store's new generation, and Open fails with
	// ErrDecode when the file's generation is below the anchor's. Without
	// an anchor such a rollback cannot be detected (see
	// docs/reliability.md). When advancing fails after a commit, the call
	// returns ErrIO saying the change is committed.
	RollbackAnchor protect.Anchor
	// LookupCacheEntries caps the lookup cache, the memory-only table
	// that lets a query naming an item's whole primary key (service and
	// account, for a generic password) skip the index. The table takes
	// two 44-byte entries per item or more (the power of two at or
	// above twice the item count, at least 1,024 or the cap if
	// smaller), grown with the store up to the cap: the cap is a
	// limit, not an allocation. 0 means
	// DefaultLookupCacheEntries (46 MB at most); a negative number
	// turns the cache off; any other number is rounded up to a power of
	// two, at most 2^24. Entries go in sets of four, so a table with as
	// many entries as items holds about 80 % of their keys at once, one
	// with twice as many about 96 %. docs/semantics.md, "The lookup
	// cache".
	LookupCacheEntries int
}

// DefaultLookupCacheEntries is the lookup cache's cap when
// Options.LookupCacheEntries is 0: 2^20 entries, 46 MB, reached by stores
// of more than 262,144 items.
const DefaultLookupCacheEntries = store.DefaultLookupCacheEntries

// DB is an open store. Its methods are safe for concurrent use. DB's own
// Add, CopyMatching, Update and Delete act as the default caller.
type DB struct {
	st     *store.DB
	flavor query.Flavor
	log    *slog.Logger
	now    func() time.Time
	def    *Client

	enclave           protect.Device
	kdfCost           *protect.KDFCost
	wipeAfterFailures bool

	// gate: operations hold it shared; Lock, Close, a passcode change's
	// commit and a wipe hold it exclusively, so none of them overlaps a
	// running operation.
	gate      sync.RWMutex
	leave     func() // gate.RUnlock, bound once (a method value allocates)
	closed    bool
	attemptMu sync.Mutex // one passcode attempt at a time
}

// Open opens the store at path, creating it when it does not exist. A
// store in use by another process is reported within Options.Timeout as
// ErrNotAvailable; so is a second Open of the same file in this process.
// opts may be nil.
func Open(path string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	st, err := store.Open(path, store.Options{Device: o.Device, Timeout: o.Timeout, ReadOnly: o.ReadOnly, Anchor: o.RollbackAnchor,
		LookupCacheEntries: o.LookupCacheEntries})
	if err != nil {
		return nil, wrapErr("Open", err)
	}
	db := &DB{st: st, log: o.Logger, now: o.Now, kdfCost: o.PasscodeCost, wipeAfterFailures: o.WipeAfterFailedAttempts}
	db.leave = db.gate.RUnlock
	if o.Flavor == FileBased {
		db.flavor = query.FileBased
	}
	if db.now == nil {
		db.now = time.Now
	}
	db.enclave = o.SecureEnclave
	if db.enclave == nil {
		db.enclave = &protect.FileDevice{Path: st.Path() + ".setoken"}
	}
	ent := o.Entitlements
	if len(ent.AccessGroups()) == 0 {
		ent = Entitlements{KeychainAccessGroups: []string{DefaultAccessGroup}}
	}
	db.def = db.Client(ent)
	if !o.ReadOnly {
		if err := st.RestartThrottle(db.now()); err != nil {
			st.Close()
			return nil, wrapErr("Open", err)
		}
	}
	return db, nil
}

// Close closes the store and wipes the keys it holds. Calls made after
// Close fail.
func (db *DB) Close() error {
	db.gate.Lock()
	defer db.gate.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	return wrapErr("Close", db.st.Close())
}

func (db *DB) isClosed() bool {
	db.gate.RLock()
	defer db.gate.RUnlock()
	return db.closed
}

// enter admits an operation: it holds the gate shared until the returned
// function is called, and fails once the store is closed.
func (db *DB) enter() (func(), error) {
	db.gate.RLock()
	if db.closed {
		db.gate.RUnlock()
		return nil, status.New(status.NotAvailable, "the store is closed")
	}
	return db.leave, nil
}

// Flavor returns the store's flavor.
func (db *DB) Flavor() Flavor {
	if db.flavor == query.FileBased {
		return FileBased
	}
	return DataProtection
}

// Add is the default caller's SecItemAdd.
func (db *DB) Add(attrs Dict) (any, error) { return db.def.Add(attrs) }

// CopyMatching is the default caller's SecItemCopyMatching.
func (db *DB) CopyMatching(query Dict) (any, error) { return db.def.CopyMatching(query) }

// Update is the default caller's SecItemUpdate.
func (db *DB) Update(query, attrsToUpdate Dict) error { return db.def.Update(query, attrsToUpdate) }

// Delete is the default caller's SecItemDelete.
func (db *DB) Delete(query Dict) error { return db.def.Delete(query) }

// Entitlements are a caller's keychain entitlements. Its access groups,
// in order, are its keychain-access-groups, then its application
// identifier, then its application groups; "com.apple.token" is moved to
// the end. A new item without agrp goes into the first group.
type Entitlements struct {
	KeychainAccessGroups  []string // keychain-access-groups, in order
	ApplicationIdentifier string   // application-identifier, e.g. "SKMME9E2Y8.com.example.app"
	ApplicationGroups     []string // com.apple.security.application-groups
}

// AccessGroups returns the caller's ordered access-group list.
func (e Entitlements) AccessGroups() []string {
	var out []string
	add := func(g string) {
		if g != "" && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	for _, g := range e.KeychainAccessGroups {
		add(g)
	}
	add(e.ApplicationIdentifier)
	for _, g := range e.ApplicationGroups {
		add(g)
	}
	if i := slices.Index(out, query.TokenGroup); i >= 0 {
		out = append(append(out[:i:i], out[i+1:]...), query.TokenGroup)
	}
	return out
}

// Client is one caller: a DB seen through a set of entitlements. It is
// cheap; make one per caller. Its methods are safe for concurrent use.
type Client struct {
	db     *DB
	ent    Entitlements
	groups []string
}

// Client returns a caller with the given entitlements.
func (db *DB) Client(e Entitlements) *Client {
	return &Client{db: db, ent: e, groups: e.AccessGroups()}
}

// AccessGroups returns the caller's ordered access groups.
func (c *Client) AccessGroups() []string { return slices.Clone(c.groups) }
