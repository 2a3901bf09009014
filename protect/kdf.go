package protect

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// KDFCost is the cost of the passcode key derivation, argon2id
// (RFC 9106). Higher is slower for the owner and for an attacker alike.
type KDFCost struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// Caps on a cost, checked when one is set and when one is read from a
// file: a crafted keybag or backup must not make Open, Unlock or Restore
// allocate or compute without bound (a backup comes from elsewhere, and
// its cost is paid before the password can be checked). The work cap,
// passes × memory, is four times the largest default cost (8 passes over
// 64 MiB): about a second here.
const (
	MaxKDFTime      = 64
	MaxKDFMemoryKiB = 1 << 20 // 1 GiB
	MaxKDFThreads   = 32
	MaxKDFWork      = 4 * 8 * (64 << 10) // passes × KiB
)

// kdfWorkCap is MaxKDFWork; the backup fuzz target lowers it so that the
// fuzzer spends its time past the header, not in argon2id.
var kdfWorkCap uint64 = MaxKDFWork

// CalibrationTarget is the time one passcode check should take on this
// machine with the default cost: within Apple's 80 ms per guess and the
// project's 100-300 ms window.
const CalibrationTarget = 180 * time.Millisecond

// baseCost is the memory and parallelism of the default cost; calibration
// only chooses the number of passes (RFC 9106's second recommended setting
// uses 64 MiB as well).
var baseCost = KDFCost{Time: 1, MemoryKiB: 64 << 10, Threads: 2}

var (
	calibrateOnce sync.Once
	calibrated    KDFCost
)

// DefaultKDFCost returns the cost of new passcodes when none is given:
// 64 MiB, 2 lanes, and as many passes as bring one derivation near
// CalibrationTarget on this machine (measured once per process, 1 to 8
// passes).
func DefaultKDFCost() KDFCost {
	calibrateOnce.Do(func() { calibrated = Calibrate(CalibrationTarget) })
	return calibrated
}

// Calibrate returns the base cost with the number of passes whose
// derivation takes about target here: after a warm-up run, it times one
// and three passes (the fastest of three runs each, so a busy moment on a
// shared machine does not skew the estimate), splits the fixed cost
// (filling 64 MiB) from the cost per pass, and solves for the target
// (1 to 8 passes).
func Calibrate(target time.Duration) KDFCost {
	c := baseCost
	run := func(t uint32) time.Duration {
		best := time.Duration(1<<63 - 1)
		for i := 0; i < 3; i++ {
			start := time.Now()
			argon2.IDKey([]byte("calibration"), make([]byte, 16), t, c.MemoryKiB, c.Threads, KeySize)
			best = min(best, time.Since(start))
		}
		return best
	}
	run(1) // warm-up: the first runs pay for page faults
	t1, t3 := run(1), run(3)
	c.Time = passesFor(target, t1, t3)
	return c
}

// passesFor solves for the number of passes that takes about target,
// given the time of one pass and of three.
func passesFor(target, t1, t3 time.Duration) uint32 {
	perPass := max((t3-t1)/2, time.Millisecond)
	fixed := max(t1-perPass, 0)
	passes := (target - fixed + perPass/2) / perPass
	return uint32(min(max(passes, 1), 8))
}

// KDFParams are the argon2id parameters of a store's passcode, stored in
// its keybag. The zero value means "no passcode set".
type KDFParams struct {
	KDFCost
	Salt [16]byte // random per passcode
}

const kdfParamsSize = 4 + 4 + 1 + 16

func (p KDFParams) set() bool { return p.Time != 0 }

func (p KDFParams) marshal(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, p.Time)
	dst = binary.BigEndian.AppendUint32(dst, p.MemoryKiB)
	dst = append(dst, p.Threads)
	return append(dst, p.Salt[:]...)
}

func (p *KDFParams) unmarshal(b []byte) error {
	if len(b) != kdfParamsSize {
		return ErrCorruptKeybag
	}
	p.Time = binary.BigEndian.Uint32(b)
	p.MemoryKiB = binary.BigEndian.Uint32(b[4:])
	p.Threads = b[8]
	copy(p.Salt[:], b[9:])
	if p.Time == 0 {
		if p.MemoryKiB != 0 || p.Threads != 0 || p.Salt != [16]byte{} {
			return ErrCorruptKeybag
		}
		return nil
	}
	return p.KDFCost.check()
}

func (c KDFCost) check() error {
	if c.Time < 1 || c.Time > MaxKDFTime || c.Threads < 1 || c.Threads > MaxKDFThreads ||
		c.MemoryKiB < 8*uint32(c.Threads) || c.MemoryKiB > MaxKDFMemoryKiB ||
		uint64(c.Time)*uint64(c.MemoryKiB) > kdfWorkCap {
		return ErrCorruptKeybag
	}
	return nil
}

var kdfRuns atomic.Uint64

// KDFRuns returns how many passcode derivations this process has run.
// Tests use it to prove that every passcode check costs a full derivation
// and that a throttled attempt costs none.
func KDFRuns() uint64 { return kdfRuns.Load() }

// passcodeKEK derives the key-encryption key of the passcode-protected
// classes: argon2id of the passcode, entangled with the device secret by
// HKDF, so guessing needs the device secret and a full argon2id run per
// guess. It is the only way secitemdb checks a passcode.
func passcodeKEK(passcode, secret []byte, storeID [StoreIDSize]byte, p KDFParams) []byte {
	kdfRuns.Add(1)
	stretched := argon2.IDKey(passcode, p.Salt[:], p.Time, p.MemoryKiB, p.Threads, KeySize)
	ikm := make([]byte, 0, len(stretched)+len(secret))
	ikm = append(append(ikm, stretched...), secret...)
	kek, err := hkdf.Key(sha256.New, ikm, storeID[:], passcodeKEKLabel, KeySize)
	clear(stretched)
	clear(ikm)
	if err != nil {
		panic("protect: " + err.Error())
	}
	return kek
}

const passcodeKEKLabel = "secitemdb v1 passcode kek"
