// Package protect is secitemdb's key hierarchy: the device secret, the
// keybag of class keys and its lock states, per-item keys and the sealing
// of item data, and the keyed index.
//
// # Key hierarchy
//
//	device secret (Device, outside the database file)
//	 ├─ device KEK = HKDF(device secret, store ID)
//	 │   ├─ index key ── tag key (HMAC-SHA256 tags), version-table key,
//	 │   │               persistent-reference key
//	 │   ├─ class keys dk, dku (Always)
//	 │   ├─ class keys ak, ck, aku, cku (while no passcode is set)
//	 │   └─ MACs of the stored keybag and of the attempt counter
//	 └─ passcode KEK = HKDF(argon2id(passcode, salt) ‖ device secret, store ID)
//	     └─ class keys ak, ck, aku, cku, akpu (while a passcode is set)
//	 class key (AES-256-GCM, cached while available)
//	  └─ item key (random per item and per write)
//	      ├─ sealed attributes (XChaCha20-Poly1305)
//	      └─ sealed secret     (XChaCha20-Poly1305)
//
// Class keys are wrapped with XChaCha20-Poly1305 under their KEK and bound
// to the store, the class, the key ID and the wrap kind. Each KEK has a
// key-committing check value (an HMAC under the KEK), verified before
// anything is unwrapped, and the whole stored keybag is authenticated
// under the device KEK.
//
// # Lock states
//
// A keybag is BeforeFirstUnlock, Unlocked or Locked (see LockState). Lock
// drops the WhenUnlocked keys (ak, aku, akpu); the AfterFirstUnlock keys
// (ck, cku) stay until Close; the Always keys (dk, dku) and the index key
// are in memory whenever the store is open.
//
// # Wiping
//
// Keys this package owns are kept in fixed-size arrays and zeroed on Lock
// and Close. This is best effort: Go's crypto/aes and GCM keep expanded key
// schedules inside cipher.AEAD values with no way to wipe them; those are
// dropped and left to the garbage collector.
//
// # Passcodes
//
// The passcode is stretched with argon2id (64 MiB, 2 lanes, passes
// calibrated to about 180 ms per derivation, see DefaultKDFCost) and
// entangled with the device secret, so every guess costs a full
// derivation on a machine that holds the device secret. The derivation is
// the only way a passcode is checked: the keybag stores a commitment to
// the derived key, never a verifier of the passcode. Changing the passcode
// re-wraps the class keys; items are untouched. Attempts and the device's
// delay table are in throttle.go; the caller records each attempt durably
// before checking it.
//
// The package does no I/O except through a Device and knows nothing of
// the database.
package protect
