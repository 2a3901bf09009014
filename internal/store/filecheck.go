package store

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"

	"github.com/secitemdb/secitemdb/internal/status"
)

// bbolt's meta page, as it lays it out in native byte order after a
// 16-byte page header: magic, version, page size, flags, root bucket (page,
// sequence), freelist page, high-water page, txid, FNV-64a checksum of the
// 56 bytes before it.
const (
	boltMagic     = 0xED0CDAED
	boltVersion   = 2
	metaOffset    = 16
	metaSumOffset = metaOffset + 56
	metaEnd       = metaSumOffset + 8
)

type boltMeta struct {
	pageSize uint32
	pgid     uint64
	txid     uint64
}

func parseMeta(b []byte) (boltMeta, bool) {
	if len(b) < metaEnd {
		return boltMeta{}, false
	}
	ne := binary.NativeEndian
	h := fnv.New64a()
	h.Write(b[metaOffset:metaSumOffset])
	if ne.Uint32(b[metaOffset:]) != boltMagic || ne.Uint32(b[metaOffset+4:]) != boltVersion || h.Sum64() != ne.Uint64(b[metaSumOffset:]) {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: ne.Uint32(b[metaOffset+8:]), pgid: ne.Uint64(b[metaOffset+40:]), txid: ne.Uint64(b[metaOffset+48:])}, true
}

// checkFile refuses, before bbolt maps it, a file bbolt would fault on: one
// whose meta pages are both damaged, or that is shorter than the pages its
// meta page says it holds (a truncated file; bbolt maps past its end and
// reading there is a bus error, not an error value).
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return ioError("failed to open store", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ioError("failed to open store", err)
	}
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	m0, ok0 := parseMeta(head[:n])
	ps := int64(os.Getpagesize())
	if ok0 && m0.pageSize >= 512 && m0.pageSize <= 1<<16 {
		ps = int64(m0.pageSize)
	}
	second := make([]byte, metaEnd)
	n, _ = f.ReadAt(second, ps)
	m1, ok1 := parseMeta(second[:n])
	var m boltMeta
	switch {
	case ok0 && ok1:
		m = m0
		if m1.txid > m0.txid {
			m = m1
		}
	case ok0:
		m = m0
	case ok1:
		m = m1
	default:
		return status.New(status.Decode, "the store file is damaged: both meta pages fail their checksum")
	}
	if int64(m.pageSize) != ps || m.pgid > uint64(fi.Size())/uint64(ps) {
		return status.New(status.Decode, "the store file is damaged: it is shorter than its meta page says (truncated?)")
	}
	return nil
}

// guard makes a fault while reading the mapped file (damaged pages pointing
// outside it) a recoverable panic in this goroutine, so recoverCorrupt turns
// it into an error instead of a crash. It returns the previous setting.
func guard() bool { return debug.SetPanicOnFault(true) }

func unguard(old bool) { debug.SetPanicOnFault(old) }
