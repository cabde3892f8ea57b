package flow_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
)

// Topology lists the declared stages with their inputs and the options they run with,
// defaults applied.
func TestTopology(t *testing.T) {
	p := flow.New(flow.Config{})
	src := flow.From(p, "src", flowtest.NewSource[int](), flow.SourceOptions{Concurrency: 2})
	m := flow.Map(src, "double", func(_ context.Context, v int) (int, error) { return 2 * v, nil }, flow.Options{Concurrency: 3, MaxDemand: 4})
	b := flow.Batch(m, "batch", flow.BatchOptions[int]{Size: 5, Timeout: time.Second})
	flow.Sink(b, "write", func(context.Context, []int) error { return nil }, flow.Options{})
	got := p.Topology()
	want := []flow.StageInfo{
		{Name: "src", Kind: flow.KindSource, Workers: 2},
		{Name: "double", Kind: flow.KindStage, Input: "src", Workers: 3, MaxDemand: 4},
		{Name: "batch", Kind: flow.KindBatch, Input: "double", Workers: 1, MaxDemand: 10},
		{Name: "write", Kind: flow.KindSink, Input: "batch", Workers: 1, MaxDemand: 10},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Topology() =\n%+v\nwant\n%+v", got, want)
	}
}
