package flowtest_test

import (
	"context"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/palleto/palleto/flow/flowtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemorySourceConforms(t *testing.T) {
	flowtest.TestSource(t, func(t *testing.T) flowtest.Harness[string] {
		src := flowtest.NewSource[string]()
		next := 0
		return flowtest.Harness[string]{
			Source: src,
			Put: func(_ context.Context, n int) error {
				for range n {
					next++
					src.Push(fmt.Sprint("m", next))
				}
				return nil
			},
			ID: func(s string) string { return s },
		}
	})
}
