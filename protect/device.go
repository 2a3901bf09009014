package protect

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// SecretSize is the size of a device secret in bytes.
const SecretSize = 32

// ErrNoDeviceSecret is returned by a Device whose secret has been erased
// or never existed.
var ErrNoDeviceSecret = errors.New("protect: device secret is not available")

// A Device supplies the device secret: the stand-in for a phone's UID key.
// It is needed to open every class key, so the database file alone, copied
// to another machine, opens nothing. Secret must return SecretSize bytes;
// the caller wipes its copy after use.
type Device interface {
	Secret() ([]byte, error)
}

// FileDevice keeps the device secret in a file of its own, mode 0600,
// created on first use. It is the default Device: the file lives beside
// the database ("<db>.device"), so keep the two apart when a copy of the
// database must stay unreadable.
type FileDevice struct {
	Path string
	Rand io.Reader // nil means crypto/rand
	// NoCreate makes a missing file an error (ErrNoDeviceSecret) instead
	// of a reason to create one: a store that exists already can only be
	// opened with the secret it was created with, and a fresh secret beside
	// it would only be a stray file. Secret then returns ErrNoDeviceFile.
	NoCreate bool

	mu sync.Mutex
}

// ErrNoDeviceFile is returned by a FileDevice with NoCreate set when its
// file does not exist. It is an ErrNoDeviceSecret.
var ErrNoDeviceFile = fmt.Errorf("%w: its file does not exist", ErrNoDeviceSecret)

var _ Device = (*FileDevice)(nil)

// Secret reads the secret, creating the file with a fresh random secret
// when it does not exist (unless NoCreate is set). The file is created with O_EXCL and synced, and
// its directory is synced, before the secret is used.
func (d *FileDevice) Secret() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := os.ReadFile(d.Path)
	if err == nil {
		if len(b) != SecretSize {
			clear(b)
			return nil, fmt.Errorf("protect: device secret file %s has %d bytes, want %d", d.Path, len(b), SecretSize)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("protect: failed to read device secret: %w", err)
	}
	if d.NoCreate {
		return nil, ErrNoDeviceFile
	}
	return d.create()
}

// Exists reports whether the secret file exists.
func (d *FileDevice) Exists() bool {
	_, err := os.Stat(d.Path)
	return err == nil
}

func (d *FileDevice) create() ([]byte, error) {
	r := d.Rand
	if r == nil {
		r = rand.Reader
	}
	secret := make([]byte, SecretSize)
	if _, err := io.ReadFull(r, secret); err != nil {
		return nil, fmt.Errorf("protect: failed to generate device secret: %w", err)
	}
	tmp := d.Path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("protect: failed to create device secret: %w", err)
	}
	_, werr := f.Write(secret)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("protect: failed to write device secret: %w", err)
	}
	// Link, not rename: never replace a secret another process created
	// a moment ago.
	if err := os.Link(tmp, d.Path); err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			clear(secret)
			return d.readExisting()
		}
		return nil, fmt.Errorf("protect: failed to install device secret: %w", err)
	}
	_ = os.Remove(tmp)
	if err := syncDir(filepath.Dir(d.Path)); err != nil {
		return nil, err
	}
	return secret, nil
}

func (d *FileDevice) readExisting() ([]byte, error) {
	b, err := os.ReadFile(d.Path)
	if err != nil {
		return nil, fmt.Errorf("protect: failed to read device secret: %w", err)
	}
	if len(b) != SecretSize {
		clear(b)
		return nil, fmt.Errorf("protect: device secret file %s has %d bytes, want %d", d.Path, len(b), SecretSize)
	}
	return b, nil
}

// Erase overwrites and removes the secret file. Every store bound to it
// becomes permanently unreadable. Most users won't need this; it exists to
// reproduce "erase the device".
func (d *FileDevice) Erase() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, err := os.OpenFile(d.Path, os.O_WRONLY, 0); err == nil {
		_, _ = f.Write(make([]byte, SecretSize))
		_ = f.Sync()
		_ = f.Close()
	}
	if err := os.Remove(d.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("protect: failed to erase device secret: %w", err)
	}
	return syncDir(filepath.Dir(d.Path))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("protect: failed to open directory for sync: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("protect: failed to sync directory: %w", err)
	}
	return nil
}

// StaticDevice is a Device holding a secret in memory, for tests and for
// embedders that fetch the secret from elsewhere (a KMS, a TPM-sealed
// blob). Erase forgets it.
type StaticDevice struct {
	mu     sync.Mutex
	secret []byte
}

// NewStaticDevice returns a Device whose secret is a copy of secret, which
// must be SecretSize bytes.
func NewStaticDevice(secret []byte) *StaticDevice {
	if len(secret) != SecretSize {
		panic("protect: NewStaticDevice: secret must be 32 bytes")
	}
	return &StaticDevice{secret: append([]byte(nil), secret...)}
}

// Secret returns a copy of the secret.
func (d *StaticDevice) Secret() ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.secret == nil {
		return nil, ErrNoDeviceSecret
	}
	return append([]byte(nil), d.secret...), nil
}

// Erase forgets the secret.
func (d *StaticDevice) Erase() {
	d.mu.Lock()
	defer d.mu.Unlock()
	clear(d.secret)
	d.secret = nil
}
