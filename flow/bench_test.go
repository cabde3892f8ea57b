package flow_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/palleto/palleto/flow"
)

// BenchmarkThroughput moves b.N items through source → map → map → sink with 4 workers per
// stage and trivial work, acknowledging every item. "channels" is the same topology written
// by hand with goroutines and unbuffered channels, counting acks but doing no demand
// accounting: the baseline that flow must at least match.
func BenchmarkThroughput(b *testing.B) {
	for _, demand := range []int{10, 1000} {
		b.Run("flow/maxdemand="+strconv.Itoa(demand), func(b *testing.B) { benchFlow(b, demand) })
	}
	b.Run("channels", benchChannels)
	// GenStage's shape: producer → producer-consumer → consumer, one process each.
	for _, demand := range []int{10, 1000} {
		b.Run("chain3/maxdemand="+strconv.Itoa(demand), func(b *testing.B) { benchChain3(b, demand) })
	}
}

func benchChain3(b *testing.B, demand int) {
	var acked atomic.Int64
	opts := flow.Options{Concurrency: 1, MaxDemand: demand}
	p := flow.New(flow.Config{})
	s := flow.From(p, "producer", countingSource(b.N, &acked), flow.SourceOptions{})
	m := flow.Map(s, "producer-consumer", func(_ context.Context, v int) (int, error) { return v + 1, nil }, opts)
	sum := 0
	flow.Sink(m, "consumer", func(_ context.Context, v int) error { sum += v; return nil }, opts)
	runBench(b, p, &acked)
}

// runBench runs a pipeline fed by countingSource(b.N, acked) and reports items/s.
func runBench(b *testing.B, p *flow.Pipeline, acked *atomic.Int64) {
	b.ReportAllocs()
	b.ResetTimer()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if acked.Load() != int64(b.N) {
		b.Fatalf("acked %d of %d", acked.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

const benchWorkers = 4

func benchFlow(b *testing.B, demand int) {
	var acked atomic.Int64
	src := countingSource(b.N, &acked)
	opts := flow.Options{Concurrency: benchWorkers, MaxDemand: demand}
	p := flow.New(flow.Config{})
	s := flow.From(p, "src", src, flow.SourceOptions{})
	m1 := flow.Map(s, "m1", func(_ context.Context, v int) (int, error) { return v + 1, nil }, opts)
	m2 := flow.Map(m1, "m2", func(_ context.Context, v int) (int, error) { return v * 2, nil }, opts)
	var sum atomic.Int64
	flow.Sink(m2, "sink", func(_ context.Context, v int) error { sum.Add(int64(v)); return nil }, opts)
	runBench(b, p, &acked)
}

func benchChannels(b *testing.B) {
	n := b.N
	var acked atomic.Int64
	c0, c1, c2 := make(chan int), make(chan int), make(chan int)
	var wg1, wg2, wg3 sync.WaitGroup
	stage := func(wg *sync.WaitGroup, in <-chan int, out chan<- int, f func(int) int) {
		for range benchWorkers {
			wg.Go(func() {
				for v := range in {
					out <- f(v)
				}
			})
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for i := range n {
			c0 <- i
		}
		close(c0)
	}()
	stage(&wg1, c0, c1, func(v int) int { return v + 1 })
	stage(&wg2, c1, c2, func(v int) int { return v * 2 })
	var sum atomic.Int64
	for range benchWorkers {
		wg3.Go(func() {
			for v := range c2 {
				sum.Add(int64(v))
				acked.Add(1)
			}
		})
	}
	wg1.Wait()
	close(c1)
	wg2.Wait()
	close(c2)
	wg3.Wait()
	b.StopTimer()
	if acked.Load() != int64(n) {
		b.Fatalf("acked %d of %d", acked.Load(), n)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "items/s")
}
