// Package query turns a keychain dictionary into a validated plan for one
// operation (SecItemAdd, SecItemCopyMatching, SecItemUpdate, SecItemDelete)
// and shapes results the way the device does.
//
// Every dictionary error is decided here, before storage is touched:
// class resolution, unknown keys, value conversions, match, return and use
// keys, match-limit defaults and the flavor's differences. The package is
// pure: no I/O, no cryptography, no clocks it does not get as arguments.
package query

import (
	"time"

	"github.com/secitemdb/secitemdb/schema"
)

// Op is the operation a dictionary is parsed for.
type Op uint8

// The operations.
const (
	Add    Op = iota + 1 // SecItemAdd
	Search               // SecItemCopyMatching
	Update               // SecItemUpdate (its query dictionary)
	Delete               // SecItemDelete
)

var opNames = [...]string{Add: "SecItemAdd", Search: "SecItemCopyMatching", Update: "SecItemUpdate", Delete: "SecItemDelete"}

// String returns Apple's function name for op.
func (op Op) String() string {
	if op >= Add && op <= Delete {
		return opNames[op]
	}
	return "SecItem?"
}

// Flavor selects which keychain's behaviour a store reproduces.
type Flavor uint8

// The flavors.
const (
	// DataProtection is the iOS data protection keychain.
	DataProtection Flavor = iota
	// FileBased reproduces the documented differences of the macOS
	// file-based keychain shim (pitfalls.md, last section).
	FileBased
)

// Return is the set of r_* keys a dictionary asks for.
type Return uint8

// The return keys.
const (
	ReturnData Return = 1 << iota
	ReturnAttributes
	ReturnRef
	ReturnPersistentRef
)

// Count returns how many return keys are set.
func (r Return) Count() int {
	n := 0
	for b := r; b != 0; b &= b - 1 {
		n++
	}
	return n
}

// Has reports whether every key in x is set.
func (r Return) Has(x Return) bool { return r&x == x }

// Keys of the dictionary vocabulary that are not attributes.
const (
	KeyClass         = "class"
	KeyValueData     = "v_Data"
	KeyValueRef      = "v_Ref"
	KeyValuePref     = "v_PersistentRef"
	KeyReturnData    = "r_Data"
	KeyReturnAttrs   = "r_Attributes"
	KeyReturnRef     = "r_Ref"
	KeyReturnPref    = "r_PersistentRef"
	KeyMatchLimit    = "m_Limit"
	LimitOne         = "m_LimitOne"
	LimitAll         = "m_LimitAll"
	KeySyncAny       = "syna"
	KeyDataProtKC    = "nleg"
	KeyUseTombstones = "u_Tomb"
)

// PersistentRef is a parsed v_PersistentRef: the 4-byte class code and
// the item's 16-byte identifier (decisions.md 7).
type PersistentRef struct {
	Class string
	ID    [16]byte
}

// PersistentRefSize is the length of a persistent reference.
const PersistentRefSize = 20

// Bytes returns the 20-byte form of r.
func (r PersistentRef) Bytes() []byte {
	out := make([]byte, 0, PersistentRefSize)
	out = append(out, r.Class...)
	return append(out, r.ID[:]...)
}

// Match holds the parsed m_* keys other than m_Limit.
type Match struct {
	Issuers       [][]byte   // m_Issuers, raw as given (identity normalises)
	ValidOnDate   *time.Time // m_ValidOnDate; the zero Time means "now"
	Email         *string    // m_EmailAddressIfPresent
	Host          *string    // m_HostOrSubdomainOfHost
	IgnoredByThis []string   // accepted and ignored (m_CaseInsensitive, ...), for the trace
}

// Use holds the parsed u_* keys.
type Use struct {
	Tombstones *bool  // u_Tomb
	AuthUI     string // u_AuthUI
	OpPrompt   string // u_OpPrompt
	CallerName string // u_CallerName
	CredRef    []byte // u_CredRef
	// AuthCtx is set when u_AuthCtx was given. The client turns an
	// authentication context into a credential reference, so giving both
	// is errSecParam; alone it is accepted and has no effect here.
	AuthCtx bool
}

// Plan is a parsed dictionary, ready to run.
type Plan struct {
	Op     Op
	Flavor Flavor
	Class  *schema.Class

	// Fields are the attributes: for Add, the values to store; otherwise
	// the equality filters the caller gave.
	Fields schema.Fields
	// Secret holds v_Data (under the code "v_Data") and the class's other
	// secret attributes, for Add.
	Secret schema.Fields
	// Implicit are the filters the keychain adds on its own (sync = 0,
	// tomb = 0, musr = empty), kept apart so a trace or an explanation
	// can name them.
	Implicit schema.Fields
	// SyncAny is set when the query named syna (or sync = "syna"): no
	// sync filter at all.
	SyncAny bool

	Return        Return
	Limit         int  // 0 means all
	LimitGiven    bool // m_Limit was in the dictionary
	PersistentRef *PersistentRef
	Ref           any // v_Ref, checked and expanded by the caller
	Match         Match
	Use           Use

	// Groups is the access-group filter after ResolveAccess: nil means
	// any group ("*"); otherwise the item's agrp must be one of them.
	Groups []string
	// Ignored lists keys accepted and ignored (nleg, f* keys, flavor
	// shims), for the trace.
	Ignored []string

	// fieldBuf backs Fields and Implicit for the common small query, so
	// parsing one allocates the plan alone.
	fieldBuf [smallQuery + 3]schema.Field
}

// smallQuery is the number of attributes a plan holds without allocating
// its field lists.
const smallQuery = 5
