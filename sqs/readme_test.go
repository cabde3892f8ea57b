package sqs_test

import (
	"os"
	"strings"
	"testing"
)

// TestReadmeShowsExample checks that the Go code in the README's "Using the runtime" is
// Example_readme's, line for line, so that what a reader copies compiles.
func TestReadmeShowsExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "## Using the runtime")
	if !ok {
		t.Fatal(`the README has no "## Using the runtime"`)
	}
	_, block, ok := strings.Cut(after, "```go\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("no Go block under the README's \"## Using the runtime\"")
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "func Example_readme() {\n")
	body, _, ok2 = strings.Cut(body, "\n}\n")
	if !ok || !ok2 {
		t.Fatal("no Example_readme in example_test.go")
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		lines = append(lines, strings.TrimPrefix(l, "\t"))
	}
	want := strings.Join(lines, "\n")
	shown := strings.TrimSuffix(block, "\n")
	if !strings.Contains(want, shown) {
		t.Errorf("the README's example is not a run of Example_readme's lines.\nREADME:\n%s\nExample_readme:\n%s", shown, want)
	}
}
