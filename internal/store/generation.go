package store

import (
	"encoding/binary"

	"github.com/secitemdb/secitemdb/internal/failpoint"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/protect"
)

// The generation counts committed write transactions. It is stored in the
// tip (meta before format 3) as 8 bytes big-endian followed by a MAC under
// the device key (so it cannot be forged or lowered without the device
// secret) and is what a rollback anchor (protect.Anchor) is compared with
// at Open.

var keyGeneration = []byte("generation")

const generationLabel = "secitemdb v1 generation"

func marshalGeneration(kb *protect.Keybag, g uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, g)
	mac := kb.CounterMAC(generationLabel, b)
	return append(b, mac[:]...)
}

// readGeneration returns the generation stored in the tip under kb's key. A
// missing record is generation 0 (a store that has never committed a
// write since it was created); a damaged or forged one is an error.
func readGeneration(kb *protect.Keybag, raw []byte) (uint64, error) {
	if raw == nil {
		return 0, nil
	}
	if len(raw) != 8+32 {
		return 0, status.New(status.Decode, "the store's generation record is damaged")
	}
	mac := kb.CounterMAC(generationLabel, raw[:8])
	if !protectEqual(mac[:], raw[8:]) {
		return 0, status.New(status.Decode, "the store's generation record is damaged")
	}
	return binary.BigEndian.Uint64(raw), nil
}

// bumpGeneration stores the next generation in this transaction: read
// under from's key, written under to's (they differ only when a wipe
// replaces the keybag).
func (tx *Tx) bumpGeneration(from, to *protect.Keybag) error {
	tip, err := tx.writeTip()
	if err != nil {
		return err
	}
	g, err := readGeneration(from, tip.Get(keyGeneration))
	if err != nil {
		return err
	}
	tx.generation = g + 1
	tx.genWritten = true
	return tip.Put(keyGeneration, marshalGeneration(to, g+1))
}

// Generation returns the store's committed generation.
func (db *DB) Generation() (uint64, error) {
	var g uint64
	err := db.View(func(tx *Tx) error {
		var err error
		g, err = readGeneration(db.kb, tipOf(tx.btx).Get(keyGeneration))
		return err
	})
	return g, err
}

// checkAnchor compares the file's generation with the anchor's at Open.
func (db *DB) checkAnchor(raw []byte) error {
	g, err := readGeneration(db.kb, raw)
	if err != nil {
		return err
	}
	if db.anchor == nil {
		return nil
	}
	want, err := db.anchor.Load()
	if err != nil {
		return status.New(status.NotAvailable, "the rollback anchor cannot be read: %v", err)
	}
	if g < want {
		return status.New(status.Decode, "the store file was rolled back: it is at generation %d, its anchor at %d", g, want)
	}
	return nil
}

// advanceAnchor tells the anchor about a committed generation. The commit
// stands whatever happens here; a failure is reported so the caller knows
// the anchor is behind (the next commit advances it past this one).
func (db *DB) advanceAnchor(g uint64) error {
	if db.anchor == nil || g == 0 {
		return nil
	}
	if err := failpoint.Hit("store:before-anchor"); err != nil {
		return err
	}
	if err := db.anchor.Advance(g); err != nil {
		return status.New(status.IO, "the change is committed, but the rollback anchor could not be advanced: %v", err)
	}
	return nil
}
