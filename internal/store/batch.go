package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit. Each Add, Update and Delete of the keychain is a durable
// transaction of its own, and a durable bbolt commit costs two fdatasyncs.
// Write lets concurrent callers share one commit: the first caller to find
// no commit running becomes the leader and commits (a lone caller does not
// wait for others, unlike bbolt's Batch with its fixed delay; see below
// for when a leader lingers); callers arriving meanwhile queue up, and
// when the leader's commit is done the first of them leads the next
// commit with all the queued work.
//
// A leader does wait for callers it knows are coming: those sealing an
// item in Prepare right now (an Add seals outside the transaction, then
// calls Write). While any are, and the queue is shorter than maxGroup,
// the leader waits for them to queue, at most maxLinger; after a commit
// of several callers it also waits while others keep arriving (lingerGap
// apart). A lone caller after a lone commit commits at once; after a
// group, it waits one lingerGap. Under load a commit then carries every
// item sealed meanwhile instead of the few queued when the last commit
// ended (under 64 writers, groups of about 32 became groups of 57-59).
//
// A caller whose function fails is taken out: the rest of the group is
// committed without it, then it runs alone, so its error (a duplicate, a
// missing item) is what it would have been on its own. One that failed
// first in its transaction has already run as if alone: its error stands
// without a second run. Functions may therefore run more than once and
// must only act through their transaction.

type pending struct {
	fn   func(*Tx) error
	done chan error    // the caller's result
	lead chan struct{} // the caller leads the next commit
}

type committer struct {
	mu      sync.Mutex
	queue   []*pending
	running bool

	sealing atomic.Int64  // callers in Prepare (an Add seals before its Write)
	last    atomic.Int64  // the size of the last group committed
	arrived chan struct{} // a caller queued (wakes a lingering leader)
}

// Group bounds: the most functions one commit takes while lingering, the
// longest a leader lingers, and how long it waits for the next arrival.
var (
	maxGroup  = 64
	maxLinger = time.Millisecond
	lingerGap = 50 * time.Microsecond
)

// linger waits, as the next leader, while callers keep arriving: until
// the queue holds maxGroup, nobody is sealing and nobody arrived for
// lingerGap, or maxLinger has passed. It returns at once when nobody is
// sealing and the last commit was a lone caller's.
func (g *committer) linger() {
	if g.sealing.Load() == 0 && g.last.Load() <= 1 {
		return
	}
	deadline := time.Now().Add(maxLinger)
	gap := time.NewTimer(lingerGap)
	defer gap.Stop()
	for {
		g.mu.Lock()
		n := len(g.queue)
		g.mu.Unlock()
		if n >= maxGroup || !time.Now().Before(deadline) {
			return
		}
		select {
		case <-g.arrived:
			gap.Reset(lingerGap)
		case <-gap.C:
			if g.sealing.Load() == 0 {
				return
			}
			gap.Reset(lingerGap)
		}
	}
}

// Write runs fn in a read-write transaction, committed durably, possibly
// together with the functions of concurrent callers.
func (db *DB) Write(fn func(*Tx) error) error {
	p := &pending{fn: fn, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	g := &db.group
	g.mu.Lock()
	g.queue = append(g.queue, p)
	if g.running {
		g.mu.Unlock()
		select {
		case g.arrived <- struct{}{}:
		default:
		}
		select {
		case err := <-p.done:
			return err
		case <-p.lead:
		}
	} else {
		g.running = true
		g.mu.Unlock()
	}
	g.linger()
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	g.last.Store(int64(len(batch)))
	db.commitGroup(batch)
	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].lead <- struct{}{}
	} else {
		g.running = false
	}
	g.mu.Unlock()
	return <-p.done
}

// errAbandon rolls a group's transaction back when a member fails.
var errAbandon = errors.New("store: group member failed")

func (db *DB) commitGroup(batch []*pending) {
	for len(batch) > 0 {
		if len(batch) == 1 {
			batch[0].done <- db.Update(batch[0].fn)
			return
		}
		failed := -1
		var failedErr error
		err := db.Update(func(tx *Tx) error {
			for i, p := range batch {
				if err := p.fn(tx); err != nil {
					failed, failedErr = i, err
					return errAbandon
				}
			}
			return nil
		})
		if failed < 0 {
			for _, p := range batch {
				p.done <- err // nil, or the commit's own failure for everyone
			}
			return
		}
		// Run the others without the failing one, then it alone; a
		// function that failed first in the transaction failed exactly
		// as it would have alone, so its error is final.
		solo := batch[failed]
		rest := append(append([]*pending(nil), batch[:failed]...), batch[failed+1:]...)
		if failed == 0 {
			solo.done <- mapBoltError(failedErr)
			batch = rest
			continue
		}
		db.commitGroup(rest)
		batch = []*pending{solo}
	}
}
