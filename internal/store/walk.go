package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// walkTree checks the page structure of the file as a read transaction
// sees it, reading the file itself: every page reached from the
// transaction's meta page lies inside the file's high-water mark, overflow
// included; no page is reached twice (so there is no cycle); element
// tables and the keys and values they point to lie inside their page;
// inline buckets are well formed; no reachable page is also on the
// freelist; keys ascend and lie where a search looks for them (a damaged
// branch key hides a run of records from lookups while iteration still
// sees them). It returns the problems it found (at most max) and whether
// the tree can be trusted to iterate (no cycle, no page out of bounds).
//
// bbolt has a checker of its own, but it trusts exactly these fields: a
// damaged overflow count makes it loop for hours, and a damaged element
// table makes it panic in a goroutine of its own, which no recover can
// catch. This walk does the same checks with bounded work, in the
// caller's goroutine.
//
// A write transaction never reuses a page that an open read transaction
// can reach, so reading the file directly while txid's transaction is open
// sees exactly its tree.
func walkTree(path string, txid uint64, max int) (problems []string, sound bool) {
	return walk(path, txid, max, false)
}

// walkBranches is the cheap walk Open makes: it reads every branch page,
// the freelist and only the header of each leaf, which is enough to rule
// out cycles and out-of-bounds children (bbolt descends them recursively,
// so a cycle would overflow the stack, which no recover catches). Damage
// inside a leaf is found by reads, which fail safely, and by Check. It
// costs about 40 ms per 100k items on the benchmark machine (one read of
// each leaf's header).
func walkBranches(path string, txid uint64) (problems []string, sound bool) {
	return walk(path, txid, 10, true)
}

func walk(path string, txid uint64, max int, shallow bool) (problems []string, sound bool) {
	f, err := os.Open(path)
	if err != nil {
		return []string{"file structure: " + err.Error()}, false
	}
	defer f.Close()
	w := &walker{f: f, max: max, seen: map[uint64]bool{}, shallow: shallow}
	defer func() {
		if r := recover(); r != nil {
			w.fail("the structure check stopped on a damaged page: %v", r)
		}
		if w.omitted > 0 {
			w.problems = append(w.problems, fmt.Sprintf("file structure: %d more problems not listed", w.omitted))
		}
		problems, sound = w.problems, !w.unsound
	}()
	meta, ok := w.meta(txid)
	if !ok {
		w.fail("no meta page for transaction %d", txid)
		return
	}
	w.ps, w.hwm = uint64(meta.pageSize), meta.pgid
	if fi, err := f.Stat(); err != nil || uint64(fi.Size()) < w.hwm*w.ps {
		w.fail("the file is shorter than its %d pages", w.hwm)
		return
	}
	w.seen[0], w.seen[1] = true, true
	if shallow {
		// The freelist too: a write commit frees the old freelist page
		// with its overflow, page by page (a damaged overflow count kept
		// a fuzzed store's first Add looping), and allocates the pages it
		// lists (one outside the file, or a meta page, would be
		// overwritten).
		w.freelist(meta.freelist)
		w.tree(meta.root, 0, true, nil, nil)
		return
	}
	free, stored := w.freelist(meta.freelist)
	w.tree(meta.root, 0, true, nil, nil)
	for id := range free {
		if w.seen[id] {
			w.fail("page %d is both in use and on the freelist", id)
		}
	}
	if stored && !w.unsound {
		// Every page is in use or free; a page that is neither leaked.
		// (This one does not make iteration unsafe.)
		lost := 0
		for id := uint64(2); id < w.hwm; id++ {
			if !w.seen[id] && !free[id] {
				lost++
			}
		}
		if lost > 0 && len(w.problems) < w.max {
			w.problems = append(w.problems, fmt.Sprintf("file structure: %d pages are neither in use nor free", lost))
		}
	}
	return
}

type walker struct {
	f        *os.File
	ps, hwm  uint64
	max      int
	seen     map[uint64]bool
	problems []string
	omitted  int // problems past max
	unsound  bool
	shallow  bool
}

// readAt fills b from the file at off.
func (w *walker) readAt(b []byte, off int64) error {
	_, err := w.f.ReadAt(b, off)
	return err
}

// fail records a problem after which the tree cannot be trusted to
// iterate.
func (w *walker) fail(format string, args ...any) {
	w.unsound = true
	w.note(format, args...)
}

type walkMeta struct {
	boltMeta
	root, freelist uint64
}

// meta returns the meta page of transaction txid (or, if neither matches,
// the newer valid one).
func (w *walker) meta(txid uint64) (walkMeta, bool) {
	var best walkMeta
	found := false
	ps := uint64(os.Getpagesize())
	for i := uint64(0); i < 2; i++ {
		b := make([]byte, metaEnd)
		if _, err := w.f.ReadAt(b, int64(i*ps)); err != nil && err != io.EOF {
			continue
		}
		m, ok := parseMeta(b)
		if !ok {
			continue
		}
		if i == 0 {
			ps = uint64(m.pageSize)
		}
		ne := binary.NativeEndian
		wm := walkMeta{boltMeta: m, root: ne.Uint64(b[metaOffset+16:]), freelist: ne.Uint64(b[metaOffset+32:])}
		if m.txid == txid {
			return wm, true
		}
		if !found || m.txid > best.txid {
			best, found = wm, true
		}
	}
	return best, found
}

// page reads page id with its overflow, checking its bounds.
func (w *walker) page(id uint64, from string, whole bool) ([]byte, bool) {
	if id < 2 || id >= w.hwm {
		w.fail("%s points to page %d, outside the file's %d pages", from, id, w.hwm)
		return nil, false
	}
	if w.seen[id] {
		w.fail("page %d is reached twice (%s)", id, from)
		return nil, false
	}
	head := make([]byte, 16)
	if err := w.readAt(head, int64(id*w.ps)); err != nil {
		w.fail("page %d cannot be read: %v", id, err)
		return nil, false
	}
	ne := binary.NativeEndian
	overflow := uint64(ne.Uint32(head[12:]))
	if ne.Uint64(head) != id {
		w.fail("page %d holds the header of page %d", id, ne.Uint64(head))
		return nil, false
	}
	if id+overflow >= w.hwm {
		w.fail("page %d claims %d overflow pages, past the end of the file", id, overflow)
		return nil, false
	}
	for i := uint64(0); i <= overflow; i++ {
		if w.seen[id+i] {
			w.fail("page %d is reached twice (overflow of page %d)", id+i, id)
			return nil, false
		}
		w.seen[id+i] = true
	}
	if w.shallow && !whole && binary.NativeEndian.Uint16(head[8:]) == flagLeaf {
		// A leaf: its header is all the cheap walk needs.
		return head, true
	}
	b := make([]byte, (1+overflow)*w.ps)
	if err := w.readAt(b, int64(id*w.ps)); err != nil {
		w.fail("page %d cannot be read: %v", id, err)
		return nil, false
	}
	return b, true
}

const (
	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagFreelist = 0x10
	leafBucket   = 0x01
	maxDepth     = 64
)

// tree walks the subtree rooted at page id. The root bucket's own tree
// (rootTree) is read whole even by the cheap walk: its leaves hold the
// buckets, which the walk must follow, inline ones included. (A small
// store's inline buckets can outgrow one page, and bbolt then splits the
// root bucket into a branch and leaves.) Every key of the subtree must lie
// in [lo, hi) (nil: unbounded), the range a search routes to it (see
// nodes). It returns the page's first key (nil when the page is empty or
// was not read whole).
func (w *walker) tree(id uint64, depth int, rootTree bool, lo, hi []byte) (first []byte) {
	if depth > maxDepth {
		w.fail("the tree is deeper than %d levels at page %d", maxDepth, id)
		return nil
	}
	b, ok := w.page(id, fmt.Sprintf("a tree at depth %d", depth), rootTree)
	if !ok {
		return nil
	}
	return w.nodes(b, id, depth, w.shallow && !rootTree && len(b) == 16, rootTree, lo, hi)
}

// note records a problem that leaves the tree safe to iterate.
func (w *walker) note(format string, args ...any) {
	if len(w.problems) < w.max {
		w.problems = append(w.problems, "file structure: "+fmt.Sprintf(format, args...))
	} else {
		w.omitted++
	}
}

// elemKeyAt returns element i's key in page b, or nil when it lies
// outside the page (the loop over the elements reports that).
func elemKeyAt(b []byte, i uint64, leaf bool) []byte {
	ne := binary.NativeEndian
	e := 16 + i*16
	if e+16 > uint64(len(b)) {
		return nil
	}
	pos, ksize := uint64(ne.Uint32(b[e:])), uint64(ne.Uint32(b[e+4:]))
	if leaf {
		pos, ksize = uint64(ne.Uint32(b[e+4:])), uint64(ne.Uint32(b[e+8:]))
	}
	if e+pos+ksize > uint64(len(b)) {
		return nil
	}
	return b[e+pos : e+pos+ksize]
}

// nodes checks the elements of one page (or inline bucket page) b; of a
// page the cheap walk read only the header of (headerOnly), just its type.
// (An empty inline bucket is 16 bytes too, and is checked whole: bbolt
// would read its element table past the bucket's value.)
//
// The full walk also checks the keys a search relies on: ascending within
// a page, inside [lo, hi), the range its parent routes to it, and each
// branch key equal to its child's first key. A search descends to the last
// child whose key is at or below the one sought (the first child for
// anything smaller), so a key of child i must be at or above key i (i > 0)
// and below key i+1; and bbolt, when it rewrites a child, finds the
// child's entry in its parent by the child's first key, so a branch key
// that differs (bbolt always writes them equal) would leave a second entry
// pointing at a freed page after the next write there. Iteration is not
// affected (a cursor walks children by position, never by key), so these
// are reported without calling the tree unsound. It returns the page's
// first key (nil when it has none or was read header-only).
func (w *walker) nodes(b []byte, id uint64, depth int, headerOnly, rootTree bool, lo, hi []byte) (first []byte) {
	ne := binary.NativeEndian
	flags, count := ne.Uint16(b[8:]), uint64(ne.Uint16(b[10:]))
	if headerOnly {
		if flags != flagLeaf {
			w.fail("page %d has type %#x where a leaf page belongs", id, flags)
		}
		return nil
	}
	if 16+count*16 > uint64(len(b)) {
		w.fail("page %d: %d elements do not fit in it", id, count)
		return
	}
	// bbolt calls a page a leaf only when its flags are exactly the leaf
	// flag: any other page is a branch to a cursor, and a cursor reads a
	// branch's first element without looking at the count. So the flags
	// must be exactly one of the two, and a branch must not be empty.
	leaf := flags == flagLeaf
	if !leaf && flags != flagBranch {
		w.fail("page %d has type %#x where a branch or leaf page belongs", id, flags)
		return
	}
	if !leaf && count == 0 {
		w.fail("branch page %d has no elements", id)
		return
	}
	var prev []byte
	misplaced, firstMisplaced := 0, uint64(0)
	defer func() {
		if misplaced > 0 {
			w.note("page %d: %d keys from key %d on are out of order or outside the range its parent routes to the page (lookups of them miss)", id, misplaced, firstMisplaced)
		}
	}()
	for i := uint64(0); i < count; i++ {
		e := 16 + i*16
		if !w.shallow {
			if key := elemKeyAt(b, i, leaf); key != nil {
				if prev != nil && bytes.Compare(key, prev) <= 0 || lo != nil && bytes.Compare(key, lo) < 0 || hi != nil && bytes.Compare(key, hi) >= 0 {
					if misplaced == 0 {
						firstMisplaced = i
					}
					misplaced++
				}
				if i == 0 {
					first = key
				}
				prev = key
			}
		}
		if !leaf {
			pos, ksize := uint64(ne.Uint32(b[e:])), uint64(ne.Uint32(b[e+4:]))
			if e+pos+ksize > uint64(len(b)) {
				w.fail("page %d: branch element %d points outside the page", id, i)
				return first
			}
			sep := b[e+pos : e+pos+ksize]
			childLo, childHi := lo, hi
			if i > 0 {
				childLo = sep
			}
			if i+1 < count {
				childHi = elemKeyAt(b, i+1, false)
			}
			child := ne.Uint64(b[e+8:])
			if cf := w.tree(child, depth+1, rootTree, childLo, childHi); cf != nil && !bytes.Equal(cf, sep) {
				w.note("page %d: branch key %d differs from the first key of its child, page %d (lookups may miss keys, and bbolt's next write under it would leave an entry pointing at a freed page)", id, i, child)
			}
		} else {
			lf, pos, ksize, vsize := ne.Uint32(b[e:]), uint64(ne.Uint32(b[e+4:])), uint64(ne.Uint32(b[e+8:])), uint64(ne.Uint32(b[e+12:]))
			if e+pos+ksize+vsize > uint64(len(b)) {
				w.fail("page %d: leaf element %d points outside the page", id, i)
				return
			}
			if lf&leafBucket != 0 {
				v := b[e+pos+ksize : e+pos+ksize+vsize]
				if len(v) < 16 {
					w.fail("page %d: bucket element %d is too short", id, i)
					return
				}
				if root := ne.Uint64(v); root != 0 {
					w.tree(root, depth+1, false, nil, nil)
				} else if len(v) < 32 {
					w.fail("page %d: inline bucket %d is too short", id, i)
				} else {
					w.nodes(v[16:], id, depth+1, false, false, nil, nil)
				}
			}
		}
		if w.unsound && len(w.problems) >= w.max {
			return
		}
	}
	return first
}

// freelist returns the pages the freelist page lists, and whether the
// freelist is stored at all (bbolt can skip storing it).
func (w *walker) freelist(id uint64) (map[uint64]bool, bool) {
	free := map[uint64]bool{}
	if id == 0 || id == ^uint64(0) { // not synced to disk
		return free, false
	}
	b, ok := w.page(id, "the meta page's freelist", true)
	if !ok {
		return free, false
	}
	ne := binary.NativeEndian
	if ne.Uint16(b[8:])&flagFreelist == 0 {
		w.fail("page %d should be the freelist", id)
		return free, false
	}
	count, start := uint64(ne.Uint16(b[10:])), uint64(16)
	if count == 0xFFFF {
		count, start = ne.Uint64(b[16:]), 24
	}
	if start+count*8 > uint64(len(b)) {
		w.fail("freelist page %d lists more pages than it holds", id)
		return free, false
	}
	for i := uint64(0); i < count; i++ {
		p := ne.Uint64(b[start+i*8:])
		if p < 2 || p >= w.hwm {
			w.fail("the freelist lists page %d, outside the file", p)
			continue
		}
		free[p] = true
	}
	return free, true
}
