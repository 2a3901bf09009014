package protect

import (
	"encoding/binary"
	"time"
)

// Attempts is the passcode attempt record: consecutive failed attempts and
// the time of the last attempt. It is written and synced before a
// passcode is checked, so cutting power during the check cannot erase an
// attempt (the IP-Box lesson), and survives restarts.
type Attempts struct {
	Failures uint32
	Last     time.Time
}

// WipeAfter is the number of consecutive failures after which a store
// configured to wipe erases everything (off by default).
const WipeAfter = 10

// Delay returns how long to wait after failures consecutive failed
// attempts before the next one, as on an iOS device: none for 1-4, then
// 1 minute (5), 5 minutes (6), 15 minutes (7 and 8), 1 hour (9 and more).
func Delay(failures uint32) time.Duration {
	switch {
	case failures < 5:
		return 0
	case failures == 5:
		return time.Minute
	case failures == 6:
		return 5 * time.Minute
	case failures <= 8:
		return 15 * time.Minute
	}
	return time.Hour
}

// Wait returns how long an attempt at now must still wait (0: go ahead).
func (a Attempts) Wait(now time.Time) time.Duration {
	d := Delay(a.Failures)
	if d == 0 {
		return 0
	}
	if until := a.Last.Add(d); now.Before(until) {
		return until.Sub(now)
	}
	return 0
}

const attemptsLabel = "secitemdb v1 attempts"

// AttemptsSize is the size of a stored attempt record.
const AttemptsSize = 4 + 8 + 32

// MarshalAttempts returns the stored form of a: failures, last attempt and
// a MAC under a key derived from the device secret.
func (kb *Keybag) MarshalAttempts(a Attempts) []byte {
	b := binary.BigEndian.AppendUint32(nil, a.Failures)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Last.UnixNano()))
	mac := kb.CounterMAC(attemptsLabel, b)
	return append(b, mac[:]...)
}

// UnmarshalAttempts reads a stored attempt record. A record that does not
// authenticate is treated as the worst case (WipeAfter-1 failures, last
// attempt now), so tampering with the counter can only slow an attacker
// down. A missing record is no failures when no passcode is set; with one
// set it is the worst case too, since the store writes a record whenever
// it commits a keybag, and deleting the record must not reset the
// counter. (Putting back an older, authentic record is a partial rollback
// of the file, which no file format alone can detect; see
// docs/semantics.md.)
func (kb *Keybag) UnmarshalAttempts(b []byte, now time.Time) (Attempts, bool) {
	worst := Attempts{Failures: WipeAfter - 1, Last: now}
	if b == nil {
		if kb.HasPasscode() {
			return worst, false
		}
		return Attempts{}, true
	}
	if len(b) != AttemptsSize {
		return worst, false
	}
	mac := kb.CounterMAC(attemptsLabel, b[:12])
	if !macEqual(mac[:], b[12:]) {
		return worst, false
	}
	return Attempts{
		Failures: binary.BigEndian.Uint32(b),
		Last:     time.Unix(0, int64(binary.BigEndian.Uint64(b[4:]))),
	}, true
}
