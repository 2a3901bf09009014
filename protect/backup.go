package protect

import (
	"bufio"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// A backup file is a password-protected, portable stream:
//
//	magic       "secitemdb backup v1\n"
//	kdf         argon2id parameters and salt (25 bytes), capped on read
//	wrapped     the random file key, XChaCha20-Poly1305 under the password
//	            key, bound to magic and kdf (24 + 32 + 16 bytes)
//	commitment  HMAC-SHA256(password key, label): rejects a wrong password
//	            before any unwrap, and commits to the key (32 bytes)
//	chunks      uvarint(len) ‖ ChaCha20-Poly1305 of up to 64 KiB under a key
//	            derived from the file key, nonce = 88-bit counter ‖ last flag,
//	            associated data = the whole header
//
// Chunks cannot be reordered, dropped or truncated unnoticed: the counter
// is in the nonce and only the final chunk carries the last flag. The
// password is checked only by deriving its key (argon2id); the header holds
// no faster verifier. Every backup has a fresh file key.

const (
	backupMagic       = "secitemdb backup v1\n"
	backupChunk       = 64 << 10
	backupCommitLabel = "secitemdb v1 backup commitment"
	backupWrapLabel   = "secitemdb v1 backup payload"
)

// Errors of backup reading.
var (
	// ErrWrongPassword is returned when the password does not open a backup.
	ErrWrongPassword = errors.New("protect: wrong backup password")
	// ErrBackupCorrupt is returned for a backup that is damaged, truncated
	// or tampered with.
	ErrBackupCorrupt = errors.New("protect: backup is damaged or was tampered with")
)

type backupWriter struct {
	w    io.Writer
	aead interface {
		Seal(dst, nonce, pt, aad []byte) []byte
	}
	aad     []byte
	buf     []byte
	counter uint64
	closed  bool
}

// NewBackupWriter starts a backup on w, protected by password with the
// given argon2id cost. Close writes the final chunk; a backup not closed
// is rejected on reading.
func NewBackupWriter(w io.Writer, password []byte, cost KDFCost) (io.WriteCloser, error) {
	if err := cost.check(); err != nil {
		return nil, errors.New("protect: invalid backup KDF cost")
	}
	p := KDFParams{KDFCost: cost}
	mustRand(p.Salt[:])
	hdr := append([]byte(backupMagic), p.marshal(nil)...)
	pk := passwordKey(password, p)
	defer clear(pk)
	var fileKey [KeySize]byte
	mustRand(fileKey[:])
	defer clear(fileKey[:])
	wrapper, _ := chacha20poly1305.NewX(pk)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	mustRand(nonce)
	hdr = append(hdr, nonce...)
	hdr = wrapper.Seal(hdr, nonce, fileKey[:], hdr[:len(backupMagic)+kdfParamsSize])
	c := backupCommitment(pk)
	hdr = append(hdr, c[:]...)
	if _, err := w.Write(hdr); err != nil {
		return nil, err
	}
	aead, err := payloadAEAD(fileKey[:], hdr)
	if err != nil {
		return nil, err
	}
	return &backupWriter{w: w, aead: aead, aad: hdr}, nil
}

func (b *backupWriter) Write(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("protect: write to a closed backup")
	}
	n := len(p)
	for len(p) > 0 {
		room := backupChunk - len(b.buf)
		take := min(room, len(p))
		b.buf = append(b.buf, p[:take]...)
		p = p[take:]
		if len(b.buf) == backupChunk {
			if err := b.flush(false); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

func (b *backupWriter) flush(last bool) error {
	ct := b.aead.Seal(nil, chunkNonce(b.counter, last), b.buf, b.aad)
	b.counter++
	clear(b.buf)
	b.buf = b.buf[:0]
	out := binary.AppendUvarint(nil, uint64(len(ct)))
	if _, err := b.w.Write(append(out, ct...)); err != nil {
		return err
	}
	return nil
}

// Close writes the final chunk.
func (b *backupWriter) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	return b.flush(true)
}

type backupReader struct {
	r    *bufio.Reader
	aead interface {
		Open(dst, nonce, ct, aad []byte) ([]byte, error)
	}
	aad     []byte
	plain   []byte // the current chunk's plaintext, reused and wiped
	buf     []byte // what Read has not returned of plain
	counter uint64
	done    bool
}

// NewBackupReader opens a backup made by NewBackupWriter. A wrong password
// is ErrWrongPassword (after one full key derivation); a damaged, truncated
// or tampered backup fails with ErrBackupCorrupt, at the latest on the read
// that reaches the damage, never with wrong plaintext.
func NewBackupReader(r io.Reader, password []byte) (io.Reader, error) {
	br := bufio.NewReader(r)
	hdrLen := len(backupMagic) + kdfParamsSize + chacha20poly1305.NonceSizeX + KeySize + chacha20poly1305.Overhead + sha256.Size
	hdr := make([]byte, hdrLen)
	if _, err := io.ReadFull(br, hdr); err != nil || string(hdr[:len(backupMagic)]) != backupMagic {
		return nil, ErrBackupCorrupt
	}
	var p KDFParams
	off := len(backupMagic)
	if err := p.unmarshal(hdr[off : off+kdfParamsSize]); err != nil || !p.set() {
		return nil, ErrBackupCorrupt
	}
	off += kdfParamsSize
	pk := passwordKey(password, p)
	defer clear(pk)
	c := backupCommitment(pk)
	if !hmac.Equal(c[:], hdr[hdrLen-sha256.Size:]) {
		return nil, ErrWrongPassword
	}
	wrapper, _ := chacha20poly1305.NewX(pk)
	n := chacha20poly1305.NonceSizeX
	fileKey, err := wrapper.Open(nil, hdr[off:off+n], hdr[off+n:hdrLen-sha256.Size], hdr[:len(backupMagic)+kdfParamsSize])
	if err != nil {
		return nil, ErrBackupCorrupt
	}
	defer clear(fileKey)
	aead, err := payloadAEAD(fileKey, hdr)
	if err != nil {
		return nil, ErrBackupCorrupt
	}
	return &backupReader{r: br, aead: aead, aad: hdr}, nil
}

func (b *backupReader) Read(p []byte) (int, error) {
	for len(b.buf) == 0 {
		if b.done {
			clear(b.plain[:cap(b.plain)]) // every byte has been handed out
			return 0, io.EOF
		}
		if err := b.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	return n, nil
}

func (b *backupReader) next() error {
	l, err := binary.ReadUvarint(b.r)
	if err != nil || l > backupChunk+chacha20poly1305.Overhead || l < chacha20poly1305.Overhead {
		return ErrBackupCorrupt
	}
	ct := make([]byte, l)
	if _, err := io.ReadFull(b.r, ct); err != nil {
		return ErrBackupCorrupt
	}
	for _, last := range []bool{false, true} {
		// Opening into the previous chunk's buffer overwrites its
		// plaintext rather than leaving copies behind.
		pt, err := b.aead.Open(b.plain[:0], chunkNonce(b.counter, last), ct, b.aad)
		if err != nil {
			continue
		}
		b.counter++
		b.plain, b.buf = pt, pt
		if last {
			if _, err := b.r.ReadByte(); err != io.EOF {
				return ErrBackupCorrupt // data after the final chunk
			}
			b.done = true
		} else if len(pt) != backupChunk {
			return ErrBackupCorrupt // only the final chunk may be short
		}
		return nil
	}
	return ErrBackupCorrupt
}

func chunkNonce(counter uint64, last bool) []byte {
	nonce := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(nonce[3:11], counter)
	if last {
		nonce[11] = 1
	}
	return nonce
}

func payloadAEAD(fileKey, hdr []byte) (interface {
	Seal(dst, nonce, pt, aad []byte) []byte
	Open(dst, nonce, ct, aad []byte) ([]byte, error)
}, error) {
	k, err := hkdf.Key(sha256.New, fileKey, hdr, backupWrapLabel, KeySize)
	if err != nil {
		return nil, err
	}
	defer clear(k)
	return chacha20poly1305.New(k)
}

// passwordKey derives a backup's password key: argon2id alone, so a
// backup restores on any device.
func passwordKey(password []byte, p KDFParams) []byte {
	kdfRuns.Add(1)
	return argon2.IDKey(password, p.Salt[:], p.Time, p.MemoryKiB, p.Threads, KeySize)
}

func backupCommitment(pk []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, pk)
	m.Write([]byte(backupCommitLabel))
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}
