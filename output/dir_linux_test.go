package output

import "testing"

// TestWriterSyncsWholeFileSystem checks that on a kernel whose syncfs reports write errors
// the Writer's rounds can sync the whole file system, and that doing so works here.
func TestWriterSyncsWholeFileSystem(t *testing.T) {
	w, err := NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !kernelAtLeast(5, 8) {
		if w.commits.whole != nil {
			t.Fatal("whole-file-system sync set up on a kernel before 5.8")
		}
		t.Skip("kernel before 5.8: syncfs does not report errors, results are synced one by one")
	}
	if w.commits.whole == nil {
		t.Fatal("no whole-file-system sync on a kernel that reports its errors")
	}
	if err := w.commits.whole(); err != nil {
		t.Fatalf("syncfs: %v", err)
	}
}
