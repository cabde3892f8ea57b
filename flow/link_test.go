package flow

import (
	"context"
	"testing"
	"testing/synctest"
)

// A consumer woken for an item as it stops waiting for another reason (its timer, its
// context) passes the wake-up call on: the item goes to the next waiting consumer rather than
// waiting for one that comes later.
func TestWakeUpCallIsPassedOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newLink[int](1).parts[0]
		p.ask(1)
		taken := make(chan int, 1)
		go func() {
			got, err := p.take(context.Background(), nil, newTaker(), nil, 1)
			if err != nil {
				t.Error(err)
			}
			for _, it := range got {
				taken <- it.v
			}
		}()
		synctest.Wait()

		// Another consumer waits after it, is woken by the item, and leaves before it saw the
		// call (its timer fired at the same moment).
		leaving := newTaker()
		p.mu.Lock()
		p.idle = append(p.idle, leaving)
		p.append([]item[int]{{v: 1}})
		p.demand--
		p.wakeLocked()
		p.mu.Unlock()
		p.leave(leaving)

		if got := <-taken; got != 1 {
			t.Fatalf("took %d, want 1", got)
		}
		p.close()
	})
}
