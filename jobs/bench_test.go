package jobs

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkEnqueue measures Enqueue of new ids into a queue in memory and a durable one
// (fsync before Enqueue returns): one id per call from one goroutine, 100 ids per call, and
// one id per call from 64 goroutines at once (whose fsyncs the store groups).
//
//	go test -run XXX -bench Enqueue -benchtime 2s ./jobs
func BenchmarkEnqueue(b *testing.B) {
	for _, durable := range []bool{false, true} {
		name := map[bool]string{false: "memory", true: "durable"}[durable]
		for _, c := range []struct {
			name     string
			batch    int
			parallel bool
		}{{"single", 1, false}, {"batch100", 100, false}, {"parallel64", 1, true}} {
			b.Run(name+"/"+c.name, func(b *testing.B) {
				cfg := Config{Memory: !durable}
				if durable {
					cfg.Dir = b.TempDir()
				}
				q, err := Open(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer q.Close()
				var next atomic.Int64
				ids := func() []string {
					out := make([]string, c.batch)
					base := next.Add(int64(c.batch))
					for i := range out {
						out[i] = "dbid:" + strconv.FormatInt(base-int64(i), 10)
					}
					return out
				}
				b.ReportAllocs()
				b.ResetTimer()
				if c.parallel {
					b.SetParallelism(32) // × GOMAXPROCS 2 = 64 goroutines
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := q.Enqueue(b.Context(), ids()...); err != nil {
								panic(fmt.Sprint(err))
							}
						}
					})
				} else {
					for b.Loop() {
						if err := q.Enqueue(b.Context(), ids()...); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.N*c.batch)/b.Elapsed().Seconds(), "jobs/s")
				if got := q.Counts().Queued; got != b.N*c.batch {
					b.Fatalf("%d jobs queued, want %d", got, b.N*c.batch)
				}
			})
		}
	}
}
