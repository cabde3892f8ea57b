package flow

import (
	"context"
	"sync"
	"time"
)

// item is a value in flight with the reference that its outcome goes to.
type item[T any] struct {
	v   T
	ref ackRef
}

// A link joins a producing stage to the workers of the consuming stage. A plain link has one
// part shared by all consumer workers; a partitioned link has one part per consumer worker.
type link[T any] struct {
	parts []*part[T]
}

func newLink[T any](parts int) *link[T] {
	l := &link[T]{parts: make([]*part[T], parts)}
	for i := range l.parts {
		l.parts[i] = &part[T]{wanted: make(chan struct{}, 1), done: make(chan struct{})}
	}
	return l
}

func (l *link[T]) close() {
	for _, p := range l.parts {
		p.close()
	}
}

// part is where demand meets items. Consumers add demand and take items; producers push no
// more items than the demand. The invariant: len(buf) + demand equals the sum of what the
// consumers asked for and have not yet taken, so nothing waits here that no one asked for.
//
// Arriving items wake the consumer that began waiting last: the busiest workers of a stage
// take the work, and the others stay parked. A stage with many workers for its peaks then
// keeps only as many warm (their stacks grown, their data in the caches) as its load needs;
// woken in turn, every worker would regrow the stack that the garbage collector shrank while
// it waited.
type part[T any] struct {
	mu     sync.Mutex
	buf    []item[T]
	head   int // buf[head:] are the waiting items
	demand int
	closed bool
	idle   []taker // the consumers waiting for items, the last to begin waiting last

	wanted chan struct{} // signalled when demand arrives
	done   chan struct{} // closed when the part closes
}

// A taker is a consumer's wake-up call: each consumer of a part has its own, and passes it
// to every take.
type taker chan struct{}

func newTaker() taker { return make(taker, 1) }

// wakeLocked wakes the consumer that began waiting last, if any. p.mu is held.
func (p *part[T]) wakeLocked() {
	if n := len(p.idle); n > 0 {
		t := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		t <- struct{}{} // it holds no call: each is sent under p.mu, after its taker was idle
	}
}

// leave takes t out of the idle consumers, when it stops waiting for another reason than a
// wake-up call. A call that came meanwhile goes to the next consumer.
func (p *part[T]) leave(t taker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		if p.idle[i] == t {
			last := len(p.idle) - 1
			copy(p.idle[i:], p.idle[i+1:])
			p.idle[last] = nil
			p.idle = p.idle[:last]
			return
		}
	}
	<-t // woken as it left: pass the call on
	if len(p.buf) > p.head {
		p.wakeLocked()
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// ask adds n to the demand.
func (p *part[T]) ask(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	p.demand += n
	p.mu.Unlock()
	signal(p.wanted)
}

// take appends at most max waiting items to dst. It blocks until there is at least one, the
// part is closed and empty (errClosed), ctx is done, or wake fires (returning dst unchanged
// and a nil error). t is the caller's own.
func (p *part[T]) take(ctx context.Context, wake <-chan time.Time, t taker, dst []item[T], max int) ([]item[T], error) {
	for {
		p.mu.Lock()
		if n := len(p.buf) - p.head; n > 0 {
			k := min(n, max)
			if k == n && p.head == 0 && len(dst) == 0 {
				// Taking everything: hand the buffer over instead of copying it, and keep
				// the taker's empty one.
				out := p.buf
				p.buf = dst
				p.mu.Unlock()
				return out, nil
			}
			dst = append(dst, p.buf[p.head:p.head+k]...)
			clear(p.buf[p.head : p.head+k])
			p.head += k
			if p.head < len(p.buf) {
				p.wakeLocked() // another waiting consumer may take the rest
			} else {
				p.buf, p.head = p.buf[:0], 0
			}
			p.mu.Unlock()
			return dst, nil
		}
		if p.closed {
			p.mu.Unlock()
			return dst, errClosed
		}
		p.idle = append(p.idle, t)
		p.mu.Unlock()
		select {
		case <-t:
		case <-p.done:
			p.leave(t) // closed: take what is left, or see it closed and empty
		case <-wake:
			p.leave(t)
			return dst, nil
		case <-ctx.Done():
			p.leave(t)
			return dst, ctx.Err()
		}
	}
}

// push moves items into the part as demand allows, blocking for demand. It returns how
// many it moved; fewer than len(items) only with ctx's error.
func (p *part[T]) push(ctx context.Context, items []item[T]) (int, error) {
	pushed := 0
	for pushed < len(items) {
		p.mu.Lock()
		if p.demand > 0 {
			k := min(p.demand, len(items)-pushed)
			p.append(items[pushed : pushed+k])
			p.demand -= k
			left := p.demand
			p.wakeLocked()
			p.mu.Unlock()
			pushed += k
			if left > 0 {
				signal(p.wanted) // another producer may use the rest
			}
			continue
		}
		p.mu.Unlock()
		select {
		case <-p.wanted:
		case <-ctx.Done():
			return pushed, ctx.Err()
		}
	}
	return pushed, nil
}

// pushOwned is push for a caller that gives up items: when the part is empty and has
// demand for all of them, the slice itself moves into the part instead of being copied, and
// the part's empty buffer comes back as spare (moved is true). The caller then continues
// with spare, never with items. Otherwise spare is items, copied as by push.
func (p *part[T]) pushOwned(ctx context.Context, items []item[T]) (spare []item[T], moved bool, n int, err error) {
	p.mu.Lock()
	if len(p.buf) == p.head && p.demand >= len(items) && len(items) > 0 {
		spare = p.buf[:0]
		p.buf, p.head = items, 0
		p.demand -= len(items)
		left := p.demand
		p.wakeLocked()
		p.mu.Unlock()
		if left > 0 {
			signal(p.wanted)
		}
		return spare, true, len(items), nil
	}
	p.mu.Unlock()
	n, err = p.push(ctx, items)
	return items, false, n, err
}

// reserve waits for demand and takes all of it, for a source to receive that many items.
func (p *part[T]) reserve(ctx context.Context) (int, error) {
	for {
		p.mu.Lock()
		if n := p.demand; n > 0 {
			p.demand = 0
			p.mu.Unlock()
			return n, nil
		}
		p.mu.Unlock()
		select {
		case <-p.wanted:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// deliver adds items received for reserved demand, and gives back the unused part of it.
// Like pushOwned, it may keep items itself and return the part's empty buffer as spare: the
// caller continues with spare, which is empty either way.
func (p *part[T]) deliver(items []item[T], unused int) (spare []item[T]) {
	p.mu.Lock()
	if len(p.buf) == p.head && len(items) > 0 {
		spare = p.buf[:0]
		p.buf, p.head = items, 0
	} else {
		p.append(items)
		clear(items)
		spare = items[:0]
	}
	p.demand += unused
	if len(items) > 0 {
		p.wakeLocked()
	}
	p.mu.Unlock()
	if unused > 0 {
		signal(p.wanted)
	}
	return spare
}

func (p *part[T]) append(items []item[T]) {
	if p.head > 0 && len(p.buf)+len(items) > cap(p.buf) {
		n := copy(p.buf, p.buf[p.head:])
		clear(p.buf[n:])
		p.buf, p.head = p.buf[:n], 0
	}
	p.buf = append(p.buf, items...)
}

func (p *part[T]) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done) // wakes every waiting consumer
	}
	p.mu.Unlock()
}

// drain removes and returns what is left, for release after the workers have stopped.
func (p *part[T]) drain() []item[T] {
	p.mu.Lock()
	defer p.mu.Unlock()
	left := p.buf[p.head:]
	p.buf, p.head = nil, 0
	return left
}
