package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"unsafe"

	"go.etcd.io/bbolt"
)

// Read transactions look keys up in bbolt's memory map directly.
//
// A bbolt read transaction sees the pages of one commit, unchanged until it
// ends; opening a bucket and a cursor for every lookup costs allocations
// (a bucket, a cursor and its growing stack) and closures that are a third
// of a keychain read. A read-only transaction therefore searches the
// mapped pages itself, with the same rules bbolt uses (its on-disk layout
// is fixed: a 16-byte page header, then 16-byte branch or leaf elements
// whose key and value sit at an offset from the element), and allocates
// nothing. Every page id, element and key is checked against the mapped
// data first. A page that fails a check raises errDamagedPage inside the
// search, and the lookup (or the rest of a walk) goes to bbolt, which
// answers it as it would have without this reader. One failure is not
// handed on: a tree deeper than any real one (errTreeTooDeep), which means
// a cycle of pages, which bbolt would follow recursively until the
// goroutine's stack overflows (a crash no recover catches); it fails the
// call with errSecDecode through the transaction's guard instead.
//
// Write transactions keep bbolt's cursors, whose changes live in nodes in
// memory, not in the map; the one exception is the index before the
// transaction changes it (see direct).

// Bucket references for direct lookups.
type bucketRef uint8

const (
	refItems bucketRef = iota // +classIndex: the four item classes
	refIndex           = refItems + 4
	refVers            = refIndex + 1
	nRefs              = refVers + 1
)

// name returns the bucket name of ref.
func (ref bucketRef) name() []byte {
	switch ref {
	case refIndex:
		return bucketIndex
	case refVers:
		return bucketVers
	}
	return classBucket(storedClasses[ref-refItems])
}

// bucketRoots are the root pages of the buckets at one commit (0: the
// bucket is inline or missing, so lookups in it go through bbolt).
type bucketRoots struct {
	txid  uint64
	roots [nRefs]uint64
}

// errDamagedPage is the panic value of a direct lookup that found a page
// it cannot believe.
type errDamagedPage struct{ what string }

func (e errDamagedPage) Error() string { return "damaged page: " + e.what }

// errTreeTooDeep is the panic value of a search deeper than maxStack
// levels: a cycle, never handed to bbolt (see above).
type errTreeTooDeep struct{ root uint64 }

func (e errTreeTooDeep) Error() string {
	return fmt.Sprintf("the tree under page %d is deeper than %d levels (a cycle)", e.root, maxStack)
}

func damaged(format string, args ...any) {
	panic(errDamagedPage{fmt.Sprintf(format, args...)})
}

// mapping is the committed file as a transaction sees it: data holds the
// pages below its high-water mark (for a write transaction, the committed
// one: it allocates pages only while committing).
type mapping struct {
	data []byte
	ps   uint64
}

// direct returns the mapping and the root of bucket ref for a direct
// lookup, or ok false when the lookup must go through bbolt (a write
// transaction, except in an index it has not changed; an inline or missing
// bucket).
//
// A write transaction that has not changed the index sees the committed
// index, page for page: its changes would live in bbolt's nodes, and bbolt
// allocates pages (and may remap the file) only while committing, so the
// mapped pages stay where they are until then although a write
// transaction holds no map lock. The uniqueness probe of an Add usually
// runs there: merges come after the group's functions, and only a removal
// from the index (an earlier member replacing a merged tombstone, say)
// sends the later probes of its transaction to bbolt.
func (tx *Tx) direct(ref bucketRef) (m *mapping, root uint64, ok bool) {
	if tx.writable {
		if ref != refIndex || tx.indexWritten {
			return nil, 0, false
		}
		b := tx.index()
		if b == nil {
			return nil, 0, false
		}
		root = uint64(b.Root()) // its committed root: unchanged until the commit
		return tx.mapped(), root, root != 0
	}
	if tx.roots == nil {
		tx.roots = tx.db.rootsAt(tx.btx)
	}
	root = tx.roots.roots[ref]
	return tx.mapped(), root, root != 0
}

// rootsAt returns the bucket roots of btx's commit, from the cache when a
// reader of the same commit has looked them up already (a commit's pages
// never change, so the entry is exact for every reader of it).
func (db *DB) rootsAt(btx *bbolt.Tx) *bucketRoots {
	txid := uint64(btx.ID())
	if r := db.roots.Load(); r != nil && r.txid == txid {
		return r
	}
	r := &bucketRoots{txid: txid}
	for ref := bucketRef(0); ref < nRefs; ref++ {
		if b := btx.Bucket(ref.name()); b != nil {
			r.roots[ref] = uint64(b.Root())
		}
	}
	for {
		old := db.roots.Load()
		if old != nil && old.txid >= txid {
			break
		}
		if db.roots.CompareAndSwap(old, r) {
			break
		}
	}
	return r
}

// mapOf returns the pages of btx's commit (for a write transaction, of the
// commit it started from).
func mapOf(btx *bbolt.Tx) mapping {
	info := btx.DB().Info()
	// The map is not Go memory: it stays where it is while a read
	// transaction holds bbolt's map lock, and, for a write transaction,
	// until it commits (only a commit grows and remaps the file).
	base := *(*unsafe.Pointer)(unsafe.Pointer(&info.Data))
	return mapping{data: unsafe.Slice((*byte)(base), btx.Size()), ps: uint64(info.PageSize)}
}

// page returns page id with its overflow pages.
func (m *mapping) page(id uint64) []byte {
	if id < 2 || id >= uint64(len(m.data))/m.ps {
		damaged("page %d is outside the file", id)
	}
	p := m.data[id*m.ps:]
	ne := binary.NativeEndian
	if ne.Uint64(p) != id {
		damaged("page %d holds the header of page %d", id, ne.Uint64(p))
	}
	size := (1 + uint64(ne.Uint32(p[12:]))) * m.ps
	if size > uint64(len(p)) {
		damaged("page %d reaches past the end of the file", id)
	}
	p = p[:size]
	flags, count := ne.Uint16(p[8:]), uint64(ne.Uint16(p[10:]))
	if flags != flagBranch && flags != flagLeaf || 16+16*count > size || flags == flagBranch && count == 0 {
		damaged("page %d has type %#x and %d elements", id, flags, count)
	}
	return p
}

func isLeaf(p []byte) bool { return binary.NativeEndian.Uint16(p[8:]) == flagLeaf }

func elemCount(p []byte) int { return int(binary.NativeEndian.Uint16(p[10:])) }

// elemKey returns element i's key (branch or leaf).
func elemKey(p []byte, i int) []byte {
	posAt, sizeAt := keyFields(p)
	return keyAt(p, uint64(i), posAt, sizeAt)
}

// keyFields returns where p's elements hold their key's offset and size:
// a branch element is pos, ksize, pgid; a leaf element flags, pos, ksize,
// vsize.
func keyFields(p []byte) (posAt, sizeAt uint64) {
	if isLeaf(p) {
		return 4, 8
	}
	return 0, 4
}

// keyAt returns element i's key, its fields at posAt and sizeAt.
func keyAt(p []byte, i, posAt, sizeAt uint64) []byte {
	ne := binary.NativeEndian
	e := 16 + 16*i
	start := e + uint64(ne.Uint32(p[e+posAt:]))
	end := start + uint64(ne.Uint32(p[e+sizeAt:]))
	if end > uint64(len(p)) {
		badElement(p, i)
	}
	return p[start:end]
}

// badElement reports element i of p pointing outside the page (apart from
// keyAt, so that keyAt is small enough to inline into the search loop).
func badElement(p []byte, i uint64) {
	damaged("element %d of page %d points outside it", i, binary.NativeEndian.Uint64(p))
}

// leafValue returns leaf element i's value; nil for a nested bucket, as
// bbolt's cursors report one.
func leafValue(p []byte, i int) []byte {
	ne := binary.NativeEndian
	e := 16 + 16*uint64(i)
	flags, pos, ksize, vsize := ne.Uint32(p[e:]), uint64(ne.Uint32(p[e+4:])), uint64(ne.Uint32(p[e+8:])), uint64(ne.Uint32(p[e+12:]))
	if e+pos+ksize+vsize > uint64(len(p)) {
		damaged("element %d of page %d points outside it", i, ne.Uint64(p))
	}
	if flags&leafBucket != 0 {
		return nil
	}
	return p[e+pos+ksize : e+pos+ksize+vsize : e+pos+ksize+vsize]
}

// child returns the page branch element i points to.
func child(p []byte, i int) uint64 {
	return binary.NativeEndian.Uint64(p[16+16*i+8:])
}

// search returns the index of the first element of p whose key is not
// below k, and whether that key equals k. It is elemKey and less written
// out for the hot loop: the page type, the field offsets and the first
// word of k are worked out once, not once per comparison.
func search(p []byte, k []byte) (int, bool) {
	ne := binary.NativeEndian
	n := uint64(elemCount(p))
	posAt, sizeAt := keyFields(p)
	var k8 uint64
	short := len(k) < 8
	if !short {
		k8 = binary.BigEndian.Uint64(k)
	}
	size := uint64(len(p))
	// keyAt, written out here: as a function it is too large to inline.
	keyOf := func(i uint64) []byte {
		e := 16 + 16*i
		start := e + uint64(ne.Uint32(p[e+posAt:]))
		end := start + uint64(ne.Uint32(p[e+sizeAt:]))
		if end > size {
			badElement(p, i)
		}
		return p[start:end]
	}
	lo, hi := uint64(0), n
	for lo < hi {
		mid := (lo + hi) >> 1
		key := keyOf(mid)
		var below bool
		if !short && len(key) >= 8 {
			if x := binary.BigEndian.Uint64(key); x != k8 {
				below = x < k8
			} else {
				below = bytes.Compare(key, k) < 0
			}
		} else {
			below = bytes.Compare(key, k) < 0
		}
		if below {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return int(lo), lo < n && bytes.Equal(keyOf(lo), k)
}

// maxStack bounds the depth of a tree a direct cursor follows: maxDepth,
// as in the walk at Open (a bbolt tree of 4 KiB pages is a handful of
// levels deep; 64 levels of fan-out two would hold 2^64 keys).
const maxStack = maxDepth

// mcursor is a cursor over one bucket's pages in the map: Seek and Next
// behave as bbolt's. When it meets a page it cannot believe, it goes on
// with a bbolt cursor over the same bucket (fb), positioned where it was:
// the map reader is only a faster way to the answers bbolt gives, so on a
// damaged file a read finds what a write transaction's lookup finds.
type mcursor struct {
	m     *mapping
	root  uint64
	tx    *Tx
	ref   bucketRef
	fb    *bbolt.Cursor // the fallback, once a damaged page was met
	last  []byte        // the key last returned (for the fallback's Next)
	n     int
	stack [maxStack]struct {
		page uint64
		i    int
	}
}

// reset points c at the bucket ref of tx, rooted at root.
func (c *mcursor) reset(tx *Tx, m *mapping, ref bucketRef, root uint64) {
	c.tx, c.m, c.ref, c.root, c.fb, c.last, c.n = tx, m, ref, root, nil, nil, 0
}

// Seek moves to the first key not below k and returns it with its value
// (nil, nil past the end).
func (c *mcursor) Seek(k []byte) (key, value []byte) {
	if c.fb == nil {
		defer func() {
			if c.fellBack(recover()) {
				key, value = c.fb.Seek(k)
				c.last = key
			}
		}()
		key, value = c.seek(k)
	} else {
		key, value = c.fb.Seek(k)
	}
	c.last = key
	return key, value
}

// Next moves to the next key and returns it with its value (nil, nil past
// the end).
func (c *mcursor) Next() (key, value []byte) {
	if c.fb == nil {
		last := c.last
		defer func() {
			if c.fellBack(recover()) {
				// Position the fallback on the last key, then step.
				if last == nil {
					key, value = nil, nil // it was past the end
				} else if k, v := c.fb.Seek(last); !bytes.Equal(k, last) {
					key, value = k, v
				} else {
					key, value = c.fb.Next()
				}
				c.last = key
			}
		}()
		key, value = c.next()
	} else {
		key, value = c.fb.Next()
	}
	c.last = key
	return key, value
}

// fellBack handles a recovered panic value r: a damaged page switches c
// to bbolt's cursor (true); anything else is panicked again.
func (c *mcursor) fellBack(r any) bool {
	if r == nil {
		return false
	}
	if _, ok := r.(errDamagedPage); !ok || c.tx == nil {
		panic(r)
	}
	c.fb = c.tx.bucket(c.ref).Cursor()
	return true
}

func (c *mcursor) seek(k []byte) ([]byte, []byte) {
	c.n = 0
	id := c.root
	for {
		if c.n == maxStack {
			panic(errTreeTooDeep{c.root})
		}
		p := c.m.page(id)
		i, exact := search(p, k)
		if !isLeaf(p) {
			if !exact && i > 0 {
				i--
			}
			c.stack[c.n].page, c.stack[c.n].i = id, i
			c.n++
			id = child(p, i)
			continue
		}
		c.stack[c.n].page, c.stack[c.n].i = id, i
		c.n++
		if i >= elemCount(p) {
			return c.next()
		}
		return elemKey(p, i), leafValue(p, i)
	}
}

func (c *mcursor) next() ([]byte, []byte) {
	for {
		// Climb to the deepest level with an element to the right.
		i := c.n - 1
		for ; i >= 0; i-- {
			p := c.m.page(c.stack[i].page)
			if c.stack[i].i < elemCount(p)-1 {
				c.stack[i].i++
				break
			}
		}
		if i < 0 {
			return nil, nil
		}
		c.n = i + 1
		// Descend to the first leaf element below it.
		p := c.m.page(c.stack[c.n-1].page)
		for !isLeaf(p) {
			if c.n == maxStack {
				panic(errTreeTooDeep{c.root})
			}
			id := child(p, c.stack[c.n-1].i)
			p = c.m.page(id)
			c.stack[c.n].page, c.stack[c.n].i = id, 0
			c.n++
		}
		if j := c.stack[c.n-1].i; j < elemCount(p) {
			return elemKey(p, j), leafValue(p, j)
		}
		// An empty leaf: keep going, as bbolt does.
	}
}

// get returns the value of key k in the bucket rooted at root, or nil.
func (m *mapping) get(root uint64, k []byte) []byte {
	id := root
	for depth := 0; ; depth++ {
		if depth == maxStack {
			panic(errTreeTooDeep{root})
		}
		p := m.page(id)
		i, exact := search(p, k)
		if isLeaf(p) {
			if !exact {
				return nil
			}
			return leafValue(p, i)
		}
		if !exact && i > 0 {
			i--
		}
		id = child(p, i)
	}
}

// tryGet is get, with ok false when a damaged page stopped the search.
func (m *mapping) tryGet(root uint64, k []byte) (v []byte, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, damaged := r.(errDamagedPage); !damaged {
				panic(r)
			}
			v, ok = nil, false
		}
	}()
	return m.get(root, k), true
}
