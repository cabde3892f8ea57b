package flow_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
)

// A source of lines, a stage that splits them into words, and a sink that counts them. The
// source is told once per line that everything derived from it is done.
func Example() {
	src := flowtest.NewSource[string]()
	src.Push("the quick brown fox", "jumps over", "the lazy dog")
	src.Close() // Receive returns io.EOF once the three lines are out: Run ends

	p := flow.New(flow.Config{})
	lines := flow.From(p, "lines", src, flow.SourceOptions{})
	words := flow.FlatMap(lines, "split", func(_ context.Context, line string) ([]string, error) {
		return strings.Fields(line), nil
	}, flow.Options{Concurrency: 2, MaxDemand: 10})
	counts := map[string]int{}
	flow.Sink(words, "count", func(_ context.Context, w string) error {
		counts[w]++ // one worker: no lock needed
		return nil
	}, flow.Options{Concurrency: 1})

	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(counts["the"], len(counts))
	for _, o := range src.Outcomes() {
		if o.Status != flow.Succeeded {
			fmt.Println("not done:", o.Data)
		}
	}
	// Output: 2 8
}
