package output

import (
	"sync"
)

// maxCachedDirs bounds the directories a Writer keeps open. Results under more directories
// than that are still written, opening and closing their directory each time.
const maxCachedDirs = 256

// groupSync runs a directory's fsync for many writers at once (group commit): a writer that
// asks while a sync is running joins the next one, which starts once the running one ends, so
// that every rename made before a writer asked is covered by the sync it waits for, and
// concurrent writers pay for one sync instead of one each.
type groupSync struct {
	mu      sync.Mutex
	running bool
	next    *syncRound // the round that waiters join while a sync runs
}

type syncRound struct {
	done chan struct{}
	err  error
}

// sync returns once do has run entirely after the call began, with do's error.
func (g *groupSync) sync(do func() error) error {
	g.mu.Lock()
	if g.running {
		r := g.next
		if r == nil {
			r = &syncRound{done: make(chan struct{})}
			g.next = r
		}
		g.mu.Unlock()
		<-r.done
		return r.err
	}
	g.running = true
	g.mu.Unlock()
	err := do()
	// Run the rounds that others joined meanwhile: each one's sync starts after they asked.
	g.mu.Lock()
	for g.next != nil {
		r := g.next
		g.next = nil
		g.mu.Unlock()
		r.err = do()
		close(r.done)
		g.mu.Lock()
	}
	g.running = false
	g.mu.Unlock()
	return err
}
