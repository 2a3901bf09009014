package etcdsync

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/secitemdb/secitemdb/secitem"
)

// ErrWrongSecret is returned by Join when the group secret does not open
// the group key stored in etcd.
var ErrWrongSecret = errors.New("etcdsync: wrong group secret")

// ErrNotJoined is returned by Start when the store has not joined the
// group.
var ErrNotJoined = errors.New("etcdsync: the store has not joined this sync group")

// The argon2id cost of the group secret: RFC 9106's second recommended
// setting, about a quarter of a second here. A join pays it once. Tests
// lower it.
var (
	kdfTime    uint32 = 3
	kdfMemory  uint32 = 64 << 10
	kdfThreads uint8  = 4
)

const wrappedFormat = 1

func prefix(group string) string { return "/secitemdb/" + group + "/" }

func itemsPrefix(group string) string { return prefix(group) + "items/" }

// groupKeys are the keys derived from a group key.
type groupKeys struct {
	group string
	names []byte // HMAC key for item names
	seal  chacha20poly1305AEAD
}

type chacha20poly1305AEAD interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
	NonceSize() int
}

func deriveKeys(group string, key []byte) (*groupKeys, error) {
	names, err := hkdf.Key(sha256.New, key, []byte(group), "secitemdb etcdsync v1 names", 32)
	if err != nil {
		return nil, err
	}
	sk, err := hkdf.Key(sha256.New, key, []byte(group), "secitemdb etcdsync v1 items", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(sk)
	clear(sk)
	if err != nil {
		return nil, err
	}
	return &groupKeys{group: group, names: names, seal: aead}, nil
}

// name returns the etcd key of the item with sync key k.
func (g *groupKeys) name(k []byte) string {
	m := hmac.New(sha256.New, g.names)
	m.Write(k)
	return itemsPrefix(g.group) + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (g *groupKeys) aad(name string) []byte {
	return []byte("secitemdb etcdsync v1\x00" + g.group + "\x00" + name)
}

// sealItem encrypts an item for its etcd key.
func (g *groupKeys) sealItem(name string, it *secitem.SyncItem) ([]byte, error) {
	pt, err := it.MarshalBinary()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, g.seal.NonceSize(), g.seal.NonceSize()+len(pt)+chacha20poly1305.Overhead)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := g.seal.Seal(nonce, nonce, pt, g.aad(name))
	clear(pt)
	return out, nil
}

// openItem decrypts a value read from etcd key name.
func (g *groupKeys) openItem(name string, v []byte) (*secitem.SyncItem, error) {
	n := g.seal.NonceSize()
	if len(v) < n {
		return nil, errors.New("etcdsync: a sealed item is too short")
	}
	pt, err := g.seal.Open(nil, v[:n], v[n:], g.aad(name))
	if err != nil {
		return nil, fmt.Errorf("etcdsync: a sealed item failed authentication under %s", name)
	}
	defer clear(pt)
	return secitem.UnmarshalSyncItem(pt)
}

// wrapGroupKey seals key under argon2id(secret).
func wrapGroupKey(group string, key, secret []byte) ([]byte, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return nil, err
	}
	out := []byte{wrappedFormat}
	out = binary.BigEndian.AppendUint32(out, kdfTime)
	out = binary.BigEndian.AppendUint32(out, kdfMemory)
	out = append(out, kdfThreads)
	out = append(out, salt[:]...)
	kek := argon2.IDKey(secret, salt[:], kdfTime, kdfMemory, kdfThreads, chacha20poly1305.KeySize)
	defer clear(kek)
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, key, []byte(group)), nil
}

// unwrapGroupKey reverses wrapGroupKey; a wrong secret is ErrWrongSecret.
func unwrapGroupKey(group string, wrapped, secret []byte) ([]byte, error) {
	const head = 1 + 4 + 4 + 1 + 16 + chacha20poly1305.NonceSizeX
	if len(wrapped) < head+chacha20poly1305.Overhead || wrapped[0] != wrappedFormat {
		return nil, errors.New("etcdsync: the stored group key is damaged")
	}
	t := binary.BigEndian.Uint32(wrapped[1:])
	m := binary.BigEndian.Uint32(wrapped[5:])
	p := wrapped[9]
	if t == 0 || t > 16 || m > 1<<21 || p == 0 || p > 16 {
		return nil, errors.New("etcdsync: the stored group key has an unacceptable cost")
	}
	kek := argon2.IDKey(secret, wrapped[10:26], t, m, p, chacha20poly1305.KeySize)
	defer clear(kek)
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, err
	}
	key, err := aead.Open(nil, wrapped[26:head], wrapped[head:], []byte(group))
	if err != nil {
		return nil, ErrWrongSecret
	}
	return key, nil
}

// The group key's keychain item in the local store.
const (
	keyAccessGroup = "secitemdb.sync"
	keyService     = "secitemdb.sync-group-key"
)

func keyClient(db *secitem.DB) *secitem.Client {
	return db.Client(secitem.Entitlements{KeychainAccessGroups: []string{keyAccessGroup}})
}

func keyQuery(group string) secitem.Dict {
	return secitem.Dict{
		secitem.Class:           secitem.ClassGenericPassword,
		secitem.AttrService:     keyService,
		secitem.AttrAccount:     group,
		secitem.AttrAccessGroup: keyAccessGroup,
	}
}

// Join makes db a member of the sync group: the group key is created (if
// the group is new) or fetched from etcd, opened with the group secret,
// and kept in db. Joining again is harmless. A wrong secret is
// ErrWrongSecret.
func Join(ctx context.Context, db *secitem.DB, cli *clientv3.Client, group string, secret []byte) error {
	if group == "" || len(secret) == 0 {
		return errors.New("etcdsync: a join needs a group name and a secret")
	}
	keyName := prefix(group) + "key"
	var key []byte
	for key == nil {
		resp, err := cli.Get(ctx, keyName)
		if err != nil {
			return err
		}
		if len(resp.Kvs) == 1 {
			if key, err = unwrapGroupKey(group, resp.Kvs[0].Value, secret); err != nil {
				return err
			}
			break
		}
		fresh := make([]byte, 32)
		if _, err := rand.Read(fresh); err != nil {
			return err
		}
		wrapped, err := wrapGroupKey(group, fresh, secret)
		if err != nil {
			return err
		}
		txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(keyName), "=", 0)).
			Then(clientv3.OpPut(keyName, string(wrapped))).Commit()
		if err != nil {
			return err
		}
		if txn.Succeeded {
			key = fresh
		}
		// Otherwise another store created the group meanwhile: read it.
	}
	defer clear(key)
	c := keyClient(db)
	q := keyQuery(group)
	err := c.Update(q, secitem.Dict{secitem.ValueData: key})
	if secitem.StatusOf(err) == secitem.ErrItemNotFound {
		add := keyQuery(group)
		add[secitem.ValueData] = key
		add[secitem.AttrAccessible] = secitem.AccessibleAfterFirstUnlockThisDeviceOnly
		_, err = c.Add(add)
	}
	if err != nil {
		return err
	}
	// A clear marker too, so that status can tell a joined store from
	// another while it is locked, without opening the key.
	return db.SetSyncState(map[string][]byte{joinedState(group): []byte("1")})
}

// Leave forgets the group locally: the group key and the engine's
// records. Items stay in the store and in etcd.
func Leave(db *secitem.DB, group string) error {
	err := keyClient(db).Delete(keyQuery(group))
	if err != nil && secitem.StatusOf(err) != secitem.ErrItemNotFound {
		return err
	}
	return db.SetSyncState(map[string][]byte{revState(group): nil, errState(group): nil, joinedState(group): nil})
}

// loadGroupKey reads the group key from the store.
func loadGroupKey(db *secitem.DB, group string) (*groupKeys, error) {
	q := keyQuery(group)
	q[secitem.ReturnData] = true
	v, err := keyClient(db).CopyMatching(q)
	if secitem.StatusOf(err) == secitem.ErrItemNotFound {
		return nil, ErrNotJoined
	}
	if err != nil {
		return nil, err
	}
	key := v.([]byte)
	defer clear(key)
	return deriveKeys(group, key)
}

func revState(group string) string    { return "etcdsync/" + group + "/revision" }
func errState(group string) string    { return "etcdsync/" + group + "/error" }
func joinedState(group string) string { return "etcdsync/" + group + "/joined" }
