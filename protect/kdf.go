package protect

import (
	"encoding/binary"
)

// KDFParams are the argon2id parameters of a store's passcode, stored in
// its keybag. The zero value means "no passcode set".
type KDFParams struct {
	Time    uint32   // passes over memory
	Memory  uint32   // KiB
	Threads uint8    // lanes
	Salt    [16]byte // random per passcode
}

const kdfParamsSize = 4 + 4 + 1 + 16

func (p KDFParams) set() bool { return p.Time != 0 }

func (p KDFParams) marshal(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, p.Time)
	dst = binary.BigEndian.AppendUint32(dst, p.Memory)
	dst = append(dst, p.Threads)
	return append(dst, p.Salt[:]...)
}

func (p *KDFParams) unmarshal(b []byte) error {
	if len(b) != kdfParamsSize {
		return ErrCorruptKeybag
	}
	p.Time = binary.BigEndian.Uint32(b)
	p.Memory = binary.BigEndian.Uint32(b[4:])
	p.Threads = b[8]
	copy(p.Salt[:], b[9:])
	if p.Time == 0 && (p.Memory != 0 || p.Threads != 0 || p.Salt != [16]byte{}) {
		return ErrCorruptKeybag
	}
	if p.Time != 0 && (p.Memory == 0 || p.Threads == 0) {
		return ErrCorruptKeybag
	}
	return nil
}
