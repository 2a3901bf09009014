package protect

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// LockState is the keybag's state, as on a device.
type LockState uint8

// The lock states.
const (
	// BeforeFirstUnlock: only the Always keys (dk, dku) and the index key
	// are in memory.
	BeforeFirstUnlock LockState = iota
	// Unlocked: every class key is in memory.
	Unlocked
	// Locked: the WhenUnlocked keys (ak, aku, akpu) are gone; the
	// AfterFirstUnlock keys (ck, cku) stay until Close.
	Locked
)

var stateNames = [...]string{"BeforeFirstUnlock", "Unlocked", "Locked"}

// String returns the state's name.
func (s LockState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("LockState(%d)", uint8(s))
}

// Errors of the keybag.
var (
	// ErrLocked is returned when an item's class key is not in memory.
	ErrLocked = errors.New("protect: class key is not available")
	// ErrWrongDevice is returned when the device secret does not belong
	// to this store.
	ErrWrongDevice = errors.New("protect: device secret does not match this store")
	// ErrNoPasscode is returned for akpu items while no passcode is set.
	ErrNoPasscode = errors.New("protect: class requires a passcode")
	// ErrCorruptKeybag is returned when the stored keybag cannot be parsed.
	ErrCorruptKeybag = errors.New("protect: keybag is corrupt")
	// ErrWrongPasscode is returned when a passcode does not open the
	// keybag (or one is given while none is set).
	ErrWrongPasscode = errors.New("protect: wrong passcode")
)

// StoreIDSize is the size of a store's random identifier.
const StoreIDSize = 16

// Wrap kinds of a class key entry.
const (
	wrapDevice   = 1 // wrapped by the device KEK alone
	wrapPasscode = 2 // wrapped by the passcode KEK (passcode entangled with the device secret)
)

const (
	entryIndexKey   = 0xFF // the entry id of the index key
	wrappedKeySize  = chacha20poly1305.NonceSizeX + KeySize + chacha20poly1305.Overhead
	keybagMagic     = "SKB1"
	commitLabel     = "secitemdb v1 kek commitment"
	deviceKEKLabel  = "secitemdb v1 device kek"
	entrySize       = 1 + 4 + 1 + wrappedKeySize
	keybagFixedSize = 4 + StoreIDSize + kdfParamsSize + 2*sha256.Size + 1 + sha256.Size
	keybagMACLabel  = "secitemdb v1 keybag mac"
)

// entry is one wrapped key as stored.
type entry struct {
	id      byte // a Class, or entryIndexKey
	keyID   uint32
	wrap    byte
	wrapped [wrappedKeySize]byte
}

type classKey struct {
	id   uint32
	key  [KeySize]byte
	aead cipher.AEAD
}

func (k *classKey) wipe() {
	clear(k.key[:])
	k.aead = nil
}

// Keybag holds a store's class keys and its lock state. It is safe for
// concurrent use. Its String method prints no key material.
type Keybag struct {
	mu      sync.RWMutex
	storeID [StoreIDSize]byte
	state   LockState
	closed  bool

	kdf        KDFParams // zero when no passcode is set
	devCommit  [sha256.Size]byte
	passCommit [sha256.Size]byte
	entries    []entry

	devKEKMAC [sha256.Size]byte // authenticates the stored keybag

	keys  [AKPU + 1]*classKey // nil while unavailable
	byID  map[uint32]Class
	index *Indexer
}

// String describes the keybag without key material.
func (kb *Keybag) String() string {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	return fmt.Sprintf("Keybag{store %x, %s, passcode %v}", kb.storeID[:4], kb.state, kb.kdf.set())
}

// NewStoreID returns a fresh random store identifier.
func NewStoreID() [StoreIDSize]byte {
	var id [StoreIDSize]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic("protect: crypto/rand failed: " + err.Error())
	}
	return id
}

// NewKeybag creates the keybag of a new store: fresh class keys for every
// class but akpu (which exists only while a passcode is set) and a fresh
// index key, all wrapped by the device secret. The new keybag is Unlocked.
func NewKeybag(storeID [StoreIDSize]byte, dev Device) (*Keybag, error) {
	secret, err := dev.Secret()
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	devKEK := deviceKEK(secret, storeID)
	defer clear(devKEK)

	kb := &Keybag{storeID: storeID, byID: map[uint32]Class{}, state: Unlocked}
	kb.devCommit = commitment(devKEK, storeID)
	kb.devKEKMAC = keybagMACKey(devKEK)
	used := map[uint32]bool{}
	for _, c := range AllClasses {
		if c.NeedsPasscode() {
			continue
		}
		k := newClassKey(used)
		kb.entries = append(kb.entries, sealEntry(byte(c), k.id, wrapDevice, devKEK, storeID, k.key[:]))
		kb.keys[c] = k
		kb.byID[k.id] = c
	}
	var ik [KeySize]byte
	mustRand(ik[:])
	kb.entries = append(kb.entries, sealEntry(entryIndexKey, 0, wrapDevice, devKEK, storeID, ik[:]))
	kb.index = newIndexer(ik[:])
	clear(ik[:])
	return kb, nil
}

// OpenKeybag parses a stored keybag and opens what the device secret
// alone opens: the Always keys and the index key, and, when no passcode is
// set, every other key too (the keybag starts Unlocked). With a passcode
// the keybag starts BeforeFirstUnlock.
func OpenKeybag(blob []byte, dev Device) (*Keybag, error) {
	kb, err := parseKeybag(blob)
	if err != nil {
		return nil, err
	}
	secret, err := dev.Secret()
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	devKEK := deviceKEK(secret, kb.storeID)
	defer clear(devKEK)
	want := commitment(devKEK, kb.storeID)
	if !hmac.Equal(want[:], kb.devCommit[:]) {
		return nil, ErrWrongDevice
	}
	mac := keybagMAC(devKEK, blob[:len(blob)-sha256.Size])
	if !hmac.Equal(mac[:], blob[len(blob)-sha256.Size:]) {
		return nil, ErrCorruptKeybag
	}
	kb.devKEKMAC = keybagMACKey(devKEK)
	for _, e := range kb.entries {
		if e.wrap != wrapDevice {
			continue
		}
		key, err := openEntry(e, devKEK, kb.storeID)
		if err != nil {
			return nil, err
		}
		if e.id == entryIndexKey {
			kb.index = newIndexer(key[:])
		} else {
			kb.keys[e.id] = newCachedKey(e.keyID, &key)
		}
		clear(key[:])
	}
	if kb.index == nil {
		return nil, ErrCorruptKeybag
	}
	kb.state = Unlocked
	if kb.kdf.set() {
		kb.state = BeforeFirstUnlock
	}
	return kb, nil
}

func parseKeybag(b []byte) (*Keybag, error) {
	if len(b) < keybagFixedSize || string(b[:4]) != keybagMagic {
		return nil, ErrCorruptKeybag
	}
	kb := &Keybag{byID: map[uint32]Class{}}
	off := 4
	copy(kb.storeID[:], b[off:])
	off += StoreIDSize
	if err := kb.kdf.unmarshal(b[off : off+kdfParamsSize]); err != nil {
		return nil, err
	}
	off += kdfParamsSize
	copy(kb.devCommit[:], b[off:])
	off += sha256.Size
	copy(kb.passCommit[:], b[off:])
	off += sha256.Size
	n := int(b[off])
	off++
	if len(b) != off+n*entrySize+sha256.Size {
		return nil, ErrCorruptKeybag
	}
	seen := map[byte]bool{}
	for i := 0; i < n; i++ {
		var e entry
		e.id = b[off]
		e.keyID = binary.BigEndian.Uint32(b[off+1:])
		e.wrap = b[off+5]
		copy(e.wrapped[:], b[off+6:off+entrySize])
		off += entrySize
		validID := e.id == entryIndexKey || (e.id >= byte(AK) && e.id <= byte(AKPU))
		validWrap := e.wrap == wrapDevice || (e.wrap == wrapPasscode && kb.kdf.set())
		if !validID || !validWrap || seen[e.id] {
			return nil, ErrCorruptKeybag
		}
		if e.id == entryIndexKey && e.wrap != wrapDevice {
			return nil, ErrCorruptKeybag
		}
		if c := Class(e.id); e.id != entryIndexKey && c.Availability() == Always && e.wrap != wrapDevice {
			return nil, ErrCorruptKeybag
		}
		seen[e.id] = true
		if e.id != entryIndexKey {
			if _, dup := kb.byID[e.keyID]; dup {
				return nil, ErrCorruptKeybag
			}
			kb.byID[e.keyID] = Class(e.id)
		}
		kb.entries = append(kb.entries, e)
	}
	if !seen[entryIndexKey] {
		return nil, ErrCorruptKeybag
	}
	return kb, nil
}

// MarshalBinary returns the keybag as stored: wrapped keys only.
func (kb *Keybag) MarshalBinary() ([]byte, error) {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	return kb.marshal(), nil
}

func (kb *Keybag) marshal() []byte {
	out := make([]byte, 0, keybagFixedSize+len(kb.entries)*entrySize)
	out = append(out, keybagMagic...)
	out = append(out, kb.storeID[:]...)
	out = kb.kdf.marshal(out)
	out = append(out, kb.devCommit[:]...)
	out = append(out, kb.passCommit[:]...)
	out = append(out, byte(len(kb.entries)))
	for _, e := range kb.entries {
		out = append(out, e.id)
		out = binary.BigEndian.AppendUint32(out, e.keyID)
		out = append(out, e.wrap)
		out = append(out, e.wrapped[:]...)
	}
	m := hmac.New(sha256.New, kb.devKEKMAC[:])
	m.Write(out)
	return m.Sum(out)
}

// keybagMACKey derives the key that authenticates the whole stored keybag
// (header, KDF parameters, entries) from the device KEK, so no byte of it
// can change unnoticed.
func keybagMACKey(devKEK []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, devKEK)
	m.Write([]byte(keybagMACLabel))
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

func keybagMAC(devKEK, body []byte) [sha256.Size]byte {
	k := keybagMACKey(devKEK)
	m := hmac.New(sha256.New, k[:])
	m.Write(body)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// StoreID returns the store's identifier.
func (kb *Keybag) StoreID() [StoreIDSize]byte { return kb.storeID }

// State returns the lock state.
func (kb *Keybag) State() LockState {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	return kb.state
}

// HasPasscode reports whether a passcode is set.
func (kb *Keybag) HasPasscode() bool {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	return kb.kdf.set()
}

// Indexer returns the store's index functions.
func (kb *Keybag) Indexer() *Indexer { return kb.index }

// KeyID returns the identifier of c's class key, which a record stores to
// name the key its item key is wrapped by. It fails with ErrLocked when
// the key is not in memory and ErrNoPasscode for akpu without a passcode.
func (kb *Keybag) KeyID(c Class) (uint32, error) {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	if c < AK || c > AKPU {
		return 0, fmt.Errorf("protect: invalid class %d", c)
	}
	if c.NeedsPasscode() && !kb.kdf.set() {
		return 0, ErrNoPasscode
	}
	k := kb.keys[c]
	if k == nil {
		return 0, ErrLocked
	}
	return k.id, nil
}

// ClassOf returns the class of a key identifier, and false when no key of
// this keybag has that identifier (a removed akpu key, or a forged record).
func (kb *Keybag) ClassOf(keyID uint32) (Class, bool) {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	c, ok := kb.byID[keyID]
	return c, ok
}

// Available reports whether the key with the given identifier is in memory.
func (kb *Keybag) Available(keyID uint32) bool {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	c, ok := kb.byID[keyID]
	return ok && kb.keys[c] != nil && kb.keys[c].id == keyID
}

// WrapItemKey wraps an item key under the class key keyID, binding it to
// aad, and appends the result (WrappedItemKeySize bytes) to dst.
func (kb *Keybag) WrapItemKey(dst []byte, keyID uint32, key *ItemKey, aad []byte) ([]byte, error) {
	a, err := kb.aeadFor(keyID)
	if err != nil {
		return nil, err
	}
	return wrapGCM(a, dst, aad, key[:]), nil
}

// UnwrapItemKey reverses WrapItemKey. It fails with ErrLocked when the
// class key is not in memory and ErrDecode when the wrapped key does not
// authenticate (or names no key of this keybag).
func (kb *Keybag) UnwrapItemKey(keyID uint32, wrapped, aad []byte) (ItemKey, error) {
	var k ItemKey
	a, err := kb.aeadFor(keyID)
	if err != nil {
		return k, err
	}
	if err := unwrapGCM(a, k[:], aad, wrapped); err != nil {
		return k, err
	}
	return k, nil
}

func (kb *Keybag) aeadFor(keyID uint32) (cipher.AEAD, error) {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	c, ok := kb.byID[keyID]
	if !ok {
		if kb.closed {
			return nil, ErrLocked
		}
		return nil, ErrDecode
	}
	k := kb.keys[c]
	if k == nil || k.id != keyID {
		return nil, ErrLocked
	}
	return k.aead, nil
}

// Lock drops the WhenUnlocked class keys (ak, aku, akpu) from memory. The
// AfterFirstUnlock keys stay if a first unlock happened.
func (kb *Keybag) Lock() {
	kb.mu.Lock()
	defer kb.mu.Unlock()
	if kb.closed {
		return
	}
	for _, c := range AllClasses {
		if c.Availability() == WhenUnlocked && kb.keys[c] != nil {
			kb.keys[c].wipe()
			kb.keys[c] = nil
		}
	}
	if kb.state == Unlocked {
		kb.state = Locked
	}
}

// Close wipes every key this keybag holds. It cannot be used afterwards.
func (kb *Keybag) Close() {
	kb.mu.Lock()
	defer kb.mu.Unlock()
	for i, k := range kb.keys {
		if k != nil {
			k.wipe()
			kb.keys[i] = nil
		}
	}
	clear(kb.devKEKMAC[:])
	kb.closed = true
	kb.state = BeforeFirstUnlock
}

// Unlock opens the passcode-protected class keys with passcode (which must
// be empty while no passcode is set) and makes the keybag Unlocked. The
// argon2id derivation runs outside the keybag's lock, so readers of the
// Always keys are not held up by a wrong guess. A wrong passcode is
// ErrWrongPasscode; the caller counts and throttles attempts.
func (kb *Keybag) Unlock(dev Device, passcode []byte) error {
	kb.mu.RLock()
	params, closed := kb.kdf, kb.closed
	kb.mu.RUnlock()
	if closed {
		return ErrLocked
	}
	secret, err := dev.Secret()
	if err != nil {
		return err
	}
	defer clear(secret)
	var kek []byte
	wrap := byte(wrapDevice)
	if params.set() {
		kek = passcodeKEK(passcode, secret, kb.storeID, params)
		wrap = wrapPasscode
	} else {
		if len(passcode) != 0 {
			return ErrWrongPasscode
		}
		kek = deviceKEK(secret, kb.storeID)
	}
	defer clear(kek)
	kb.mu.Lock()
	defer kb.mu.Unlock()
	if kb.closed || kb.kdf != params {
		return ErrWrongPasscode // the passcode changed meanwhile
	}
	if params.set() {
		want := commitment(kek, kb.storeID)
		if !hmac.Equal(want[:], kb.passCommit[:]) {
			return ErrWrongPasscode
		}
	}
	return kb.unlockWith(kek, wrap)
}

// PasscodeChange is a prepared SetPasscode: the keybag to store, and the
// class keys it destroys. Apply it with Commit only after Blob is durably
// stored, so a failure at any point leaves exactly one passcode working.
type PasscodeChange struct {
	// Blob is the new stored keybag.
	Blob []byte
	// Dropped lists the key IDs the change destroys (akpu when the
	// passcode is removed); items wrapped by them must be deleted in the
	// transaction that stores Blob.
	Dropped []uint32

	next *Keybag
	keys map[Class]*classKey
}

// PrepareSetPasscode computes the keybag after setting, changing or
// removing the passcode. old must open the current keybag (empty when no
// passcode is set); an empty new removes the passcode, which destroys the
// akpu key. Class keys are re-wrapped, never replaced, so items are
// untouched. cost applies to a new passcode.
func (kb *Keybag) PrepareSetPasscode(dev Device, old, new []byte, cost KDFCost) (*PasscodeChange, error) {
	if len(new) > 0 {
		if err := cost.check(); err != nil {
			return nil, fmt.Errorf("protect: invalid KDF cost %+v", cost)
		}
	}
	kb.mu.RLock()
	params, closed := kb.kdf, kb.closed
	kb.mu.RUnlock()
	if closed {
		return nil, ErrLocked
	}
	secret, err := dev.Secret()
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	devKEK := deviceKEK(secret, kb.storeID)
	defer clear(devKEK)

	// Open the current passcode-protected keys with the old passcode.
	oldWrap, oldKEK := byte(wrapDevice), devKEK
	if params.set() {
		oldKEK = passcodeKEK(old, secret, kb.storeID, params)
		defer clear(oldKEK)
		oldWrap = wrapPasscode
	} else if len(old) != 0 {
		return nil, ErrWrongPasscode
	}
	kb.mu.RLock()
	if params.set() {
		want := commitment(oldKEK, kb.storeID)
		if !hmac.Equal(want[:], kb.passCommit[:]) {
			kb.mu.RUnlock()
			return nil, ErrWrongPasscode
		}
	}
	entries := append([]entry(nil), kb.entries...)
	kb.mu.RUnlock()
	keys := map[Class]*classKey{}
	used := map[uint32]bool{}
	var kept []entry
	for _, e := range entries {
		if e.id != entryIndexKey {
			used[e.keyID] = true
		}
		if e.wrap != oldWrap || e.id == entryIndexKey || Class(e.id).Availability() == Always {
			kept = append(kept, e)
			continue
		}
		key, err := openEntry(e, oldKEK, kb.storeID)
		if err != nil {
			for _, k := range keys {
				k.wipe()
			}
			return nil, err
		}
		keys[Class(e.id)] = newCachedKey(e.keyID, &key)
		clear(key[:])
	}

	ch := &PasscodeChange{keys: keys}
	next := &Keybag{storeID: kb.storeID, devCommit: kb.devCommit, devKEKMAC: kb.devKEKMAC}
	newWrap, newKEK := byte(wrapDevice), devKEK
	if len(new) > 0 {
		next.kdf = KDFParams{KDFCost: cost}
		mustRand(next.kdf.Salt[:])
		newKEK = passcodeKEK(new, secret, kb.storeID, next.kdf)
		defer clear(newKEK)
		newWrap = wrapPasscode
		next.passCommit = commitment(newKEK, kb.storeID)
		if keys[AKPU] == nil {
			keys[AKPU] = newClassKey(used)
		}
	} else if k := keys[AKPU]; k != nil {
		ch.Dropped = append(ch.Dropped, k.id)
		k.wipe()
		delete(keys, AKPU)
	}
	next.entries = kept
	for _, c := range AllClasses {
		if k := keys[c]; k != nil {
			next.entries = append(next.entries, sealEntry(byte(c), k.id, newWrap, newKEK, kb.storeID, k.key[:]))
		}
	}
	ch.Blob = next.marshal()
	ch.next = next
	return ch, nil
}

// Discard wipes the class keys a prepared change holds; call it when the
// change is not committed (its blob could not be stored). A discarded
// change must not be committed.
func (ch *PasscodeChange) Discard() {
	for c, k := range ch.keys {
		k.wipe()
		delete(ch.keys, c)
	}
}

// Commit applies a prepared change: the new passcode (or none) is in
// force, every class key is in memory and the keybag is Unlocked.
func (kb *Keybag) Commit(ch *PasscodeChange) {
	kb.mu.Lock()
	defer kb.mu.Unlock()
	kb.kdf = ch.next.kdf
	kb.passCommit = ch.next.passCommit
	kb.entries = ch.next.entries
	for _, id := range ch.Dropped {
		if c, ok := kb.byID[id]; ok {
			if k := kb.keys[c]; k != nil {
				k.wipe()
			}
			kb.keys[c] = nil
			delete(kb.byID, id)
		}
	}
	for c, k := range ch.keys {
		if old := kb.keys[c]; old != nil && old != k {
			old.wipe()
		}
		kb.keys[c] = k
		kb.byID[k.id] = c
	}
	kb.state = Unlocked
}

// CounterMAC authenticates a small record stored beside the keybag (the
// passcode attempt counter) under a key derived from the device secret, so
// the record cannot be forged without it.
func (kb *Keybag) CounterMAC(label string, data []byte) [sha256.Size]byte {
	kb.mu.RLock()
	defer kb.mu.RUnlock()
	m := hmac.New(sha256.New, kb.devKEKMAC[:])
	m.Write([]byte(label))
	m.Write(data)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// unlockWith opens every passcode-wrapped entry under kek (or, without a
// passcode, every device-wrapped one) and marks the keybag Unlocked.
// Callers hold kb.mu.
func (kb *Keybag) unlockWith(kek []byte, wrap byte) error {
	opened := map[byte]*classKey{}
	for _, e := range kb.entries {
		if e.wrap != wrap || e.id == entryIndexKey {
			continue
		}
		key, err := openEntry(e, kek, kb.storeID)
		if err != nil {
			for _, k := range opened {
				k.wipe()
			}
			return err
		}
		opened[e.id] = newCachedKey(e.keyID, &key)
		clear(key[:])
	}
	for id, k := range opened {
		if old := kb.keys[id]; old != nil {
			old.wipe()
		}
		kb.keys[id] = k
	}
	kb.state = Unlocked
	return nil
}

func newClassKey(used map[uint32]bool) *classKey {
	k := &classKey{}
	for {
		var b [4]byte
		mustRand(b[:])
		k.id = binary.BigEndian.Uint32(b[:])
		if k.id != 0 && !used[k.id] {
			used[k.id] = true
			break
		}
	}
	mustRand(k.key[:])
	k.aead = gcm(k.key[:])
	return k
}

func newCachedKey(id uint32, key *[KeySize]byte) *classKey {
	k := &classKey{id: id, key: *key}
	k.aead = gcm(k.key[:])
	return k
}

func mustRand(b []byte) {
	if _, err := rand.Read(b); err != nil {
		panic("protect: crypto/rand failed: " + err.Error())
	}
}

// deviceKEK derives the key-encryption key of the Always classes and the
// index key from the device secret alone.
func deviceKEK(secret []byte, storeID [StoreIDSize]byte) []byte {
	k, err := hkdf.Key(sha256.New, secret, storeID[:], deviceKEKLabel, KeySize)
	if err != nil {
		panic("protect: " + err.Error())
	}
	return k
}

// commitment is a key-committing check value for a KEK: it lets Open reject
// a wrong device secret or passcode before any unwrap, and stops a crafted
// keybag whose entries decrypt under two keys. It reveals nothing faster
// than deriving the KEK, which costs the full KDF.
func commitment(kek []byte, storeID [StoreIDSize]byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, kek)
	m.Write([]byte(commitLabel))
	m.Write(storeID[:])
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

func entryAAD(storeID [StoreIDSize]byte, id byte, keyID uint32, wrap byte) []byte {
	aad := make([]byte, 0, 32)
	aad = append(aad, "secitemdb v1 class key"...)
	aad = append(aad, storeID[:]...)
	aad = append(aad, id)
	aad = binary.BigEndian.AppendUint32(aad, keyID)
	return append(aad, wrap)
}

func sealEntry(id byte, keyID uint32, wrap byte, kek []byte, storeID [StoreIDSize]byte, key []byte) entry {
	a, err := chacha20poly1305.NewX(kek)
	if err != nil {
		panic("protect: " + err.Error())
	}
	e := entry{id: id, keyID: keyID, wrap: wrap}
	nonce := e.wrapped[:chacha20poly1305.NonceSizeX]
	mustRand(nonce)
	a.Seal(e.wrapped[len(nonce):len(nonce)], nonce, key, entryAAD(storeID, id, keyID, wrap))
	return e
}

func openEntry(e entry, kek []byte, storeID [StoreIDSize]byte) ([KeySize]byte, error) {
	var key [KeySize]byte
	a, err := chacha20poly1305.NewX(kek)
	if err != nil {
		panic("protect: " + err.Error())
	}
	n := chacha20poly1305.NonceSizeX
	pt, err := a.Open(key[:0], e.wrapped[:n], e.wrapped[n:], entryAAD(storeID, e.id, e.keyID, e.wrap))
	if err != nil || len(pt) != KeySize {
		clear(key[:])
		return key, ErrDecode
	}
	return key, nil
}

func macEqual(a, b []byte) bool { return hmac.Equal(a, b) }
