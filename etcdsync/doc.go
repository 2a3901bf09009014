// Package etcdsync replicates a secitemdb store's synchronizable items
// (sync = 1, tombstones included) through etcd, so the stores of several
// services share credentials the way iCloud Keychain shares them between
// devices. Reads stay local; everything else never leaves its store.
//
// It is a module of its own so that secitemdb itself stays bbolt and
// x/crypto for those who do not sync.
//
// # Model
//
// Stores that share items form a sync group, named by a string. The group
// has a random 256-bit group key that etcd never sees: Join wraps it under
// a key derived with argon2id from the group secret and stores the wrapped
// key in etcd, so a store with the secret can join and one without it
// sees ciphertext only. Each store keeps the unwrapped group key as a
// keychain item of its own (ThisDeviceOnly, AfterFirstUnlock, in the
// access group "secitemdb.sync"), and a clear marker that it joined, so
// StoredStatus answers for a store that is still locked.
//
// Every synchronizable item is one etcd key under
// /secitemdb/<group>/items/: the key's name is a keyed hash (HMAC-SHA256
// under a key derived from the group key) of the item's class and primary
// key, so names reveal nothing; the value is the item, attributes and
// secrets, sealed with XChaCha20-Poly1305 under another derived key, with
// the group and the key's name as associated data (a value cannot be moved
// to another name or group).
//
// # Engine
//
// An Engine pushes the store's journal (every committed change to a
// synchronizable item, kept durably, so changes made while etcd is
// unreachable wait and go later) and pulls what changed in etcd since the
// last revision it applied (kept in the store, committed with the items
// it describes), so a restart, a partition or an etcd restart converge
// without a full resync. An etcd watch wakes it early; a poll interval
// bounds the wait otherwise. Changes go to etcd in batches of up to 64
// items: one transaction reads their keys, one writes every newer local
// version on the condition that none of those keys changed in between
// (another store's write makes the batch fall back to one item at a
// time); the journal is acknowledged once per batch.
//
// # Conflicts
//
// Versions are ordered by mdat, then by UUID (secitem.SyncItem.Newer):
// the later modification wins everywhere, a tie goes to the greater UUID.
// A push replaces etcd's version only if it is newer (a compare-and-swap on
// the key's modification revision), so etcd always holds the greatest
// version it has seen; a store whose version lost takes etcd's. A delete
// travels as a tombstone, so a later update resurrects the item and a
// later delete wins over an earlier update.
//
// # Limits
//
// One sync group per store. Tombstones are kept (in etcd and in every
// store) until deleted explicitly. Leave forgets the group key and the
// engine's records locally; it deletes nothing in etcd. To rotate the
// group key, create a new group, join every store to it, and delete the
// old group's prefix.
package etcdsync
