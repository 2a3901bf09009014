package store

import (
	"errors"
	"sync"
)

// Group commit. Each Add, Update and Delete of the keychain is a durable
// transaction of its own, and a durable bbolt commit costs two fdatasyncs.
// Write lets concurrent callers share one commit: the first caller to find
// no commit running becomes the leader and commits at once (a lone caller
// never waits for others, unlike bbolt's Batch with its delay); callers
// arriving meanwhile queue up, and when the leader's commit is done the
// first of them leads the next commit with all the queued work.
//
// A caller whose function fails is taken out: the rest of the group is
// committed without it, then it runs alone, so its error (a duplicate, a
// missing item) is what it would have been on its own. Functions may
// therefore run more than once and must only act through their
// transaction.

type pending struct {
	fn   func(*Tx) error
	done chan error    // the caller's result
	lead chan struct{} // the caller leads the next commit
}

type committer struct {
	mu      sync.Mutex
	queue   []*pending
	running bool
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
		case err := <-p.done:
			return err
		case <-p.lead:
		}
	} else {
		g.running = true
		g.mu.Unlock()
	}
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
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
		err := db.Update(func(tx *Tx) error {
			for i, p := range batch {
				if err := p.fn(tx); err != nil {
					failed = i
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
		// Run the others without the failing one, then it alone.
		solo := batch[failed]
		rest := append(append([]*pending(nil), batch[:failed]...), batch[failed+1:]...)
		db.commitGroup(rest)
		batch = []*pending{solo}
	}
}
