// Package secitem is Apple's keychain API (SecItemAdd, SecItemCopyMatching,
// SecItemUpdate, SecItemDelete) as an embeddable Go database: the same
// dictionaries, the same item classes and uniqueness rules, the same status
// codes and result shapes, stored encrypted in a single bbolt file.
//
// Code written against the iOS data protection keychain behaves the same
// here, including the behaviours that surprise people (see the project's
// docs/pitfalls.md). Where secitemdb chooses differently from the device,
// docs/semantics.md says so.
//
// # Model
//
// A store ([Open]) holds items of four classes: generic passwords
// ([ClassGenericPassword]), internet passwords, certificates and keys; an
// identity ([ClassIdentity]) is a certificate together with its private
// key. Each item has attributes (four-character codes such as [AttrService]
// "svce") and usually a secret ([ValueData]). A class's primary-key
// attributes decide uniqueness: two generic passwords may not share
// service, account and access group, whatever else differs.
//
// Calls are made by a caller ([Client]) with entitlements: an ordered list
// of access groups. A caller sees only items in its groups; a new item goes
// into its first group. DB's own Add, CopyMatching, Update and Delete act as
// the default caller, whose entitlements are Options.Entitlements or, when
// those are empty, the single group [DefaultAccessGroup].
//
// # Dictionaries
//
// A [Dict] maps Apple's key strings to values. Accepted Go types: string,
// []byte, bool, any integer type, time.Time; []any or typed slices for
// array values (m_Issuers); for [MatchLimit], [MatchLimitOne],
// [MatchLimitAll] or a positive integer. Values are converted as the device
// converts them: for a blob attribute a string and a []byte with the same
// bytes are the same value (and the caller's type is kept), booleans become
// the numbers 0 and 1, and a string holding an integer becomes a number
// for a number attribute. Anything else is [ErrParam].
//
// Keys of four characters are attributes: one the class does not have is
// [ErrNoSuchAttr]. Other keys are dispatched on their first letter: m_
// match keys (only CopyMatching accepts them), r_ return keys (bool
// values), u_ use keys, v_ value keys; anything else is [ErrParam].
//
// # Results
//
// Add and CopyMatching return Apple's shapes:
//
//   - no return key: nil;
//   - one return key with limit one: its value, []byte for [ReturnData]
//     and [ReturnPersistentRef], a [Dict] for [ReturnAttributes], the Go
//     object for [ReturnRef] (nil for passwords);
//   - several return keys: one Dict holding the attributes plus
//     [ValueData], [ValueRef] and [ValuePersistentRef] as asked;
//   - any limit other than one: a []any of those per-item values, even for
//     a single match.
//
// Attribute values come back as string, []byte, int64 (numbers, and
// booleans as 0 or 1) and time.Time in UTC. A returned attribute
// dictionary plus [Class] is a valid query for the same item.
//
// CopyMatching returns one item unless [MatchLimit] says otherwise;
// Update and Delete act on every match. Results come in creation order.
//
// # Certificates, keys and identities
//
// Certificates and keys are best added by reference: [ValueRef] holding an
// *x509.Certificate, a private key (*ecdsa.PrivateKey, *rsa.PrivateKey,
// ed25519.PrivateKey) or a public key. The attributes the device derives
// are derived here too (see package identity); raw bytes under [ValueData]
// get default attributes only. An identity is a certificate and the
// private key whose klbl equals the certificate's pkhh; it is never stored
// as such. [ReturnRef] gives back Go values: *x509.Certificate, a
// crypto.Signer for private keys, the public key type, *identity.Identity.
// [DB.GenerateKey] creates keys, including Secure Enclave keys
// ([TokenKey]) whose private bytes never leave.
//
// # Errors
//
// Every error is an [*Error] carrying the operation, the [Status] (an
// OSStatus with Apple's value) and a detail naming the key or value at
// fault; errors.Is(err, ErrItemNotFound) works. Details and traces never
// contain secrets.
//
// # Storage and protection
//
// Every item has its own random key, wrapped by the class key of its
// protection class ([AttrAccessible]); its attributes and its secret are
// sealed separately (XChaCha20-Poly1305), bound to the store, the row, the
// class, the key and the item's version, so nothing can be moved, swapped
// or replayed unnoticed. Class keys are wrapped under a key derived from a
// device secret kept outside the database file (Options.Device). Equality
// queries, uniqueness checks and deletes use a keyed index (HMAC-SHA256):
// the file holds no attribute value and no unkeyed hash of one.
//
// # Tracing
//
// With Options.Logger set, every call is logged when it returns: the
// operation, the dictionaries (secrets redacted, see [FormatDict]), the
// shape of the result and the status.
//
// # Concurrency
//
// A DB and its Clients are safe for concurrent use. Each Add, Update and
// Delete is durable when it returns. Concurrent calls share commits (a
// group commit): a call that finds no commit running commits at once when
// it is alone; when other calls are sealing items or arriving, it waits
// for them (up to 1 ms, up to 64 calls) and commits them all, each call
// still failing or succeeding on its own. One process at a time may open
// a store; Open fails with [ErrNotAvailable] within Options.Timeout
// otherwise.
//
// Under many concurrent writers the sealing of items and the Go garbage
// collector share the CPU: on the 2-core test machine, with 64 writers,
// the collector took about a tenth of it, and GOGC=400 ran the workload
// about 12 % faster (BENCHMARKS.md, Run 12). That setting belongs to the
// host program, which knows what memory it can spare.
package secitem
