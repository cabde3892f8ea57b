package output_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/palleto/palleto/output"
)

func ExampleRelPath() {
	for _, key := range []string{
		"logs/2024/app.log.gz",
		"a",
		"a/b",
		"a.json/b",
		"../../etc/passwd",
		"a//b",
		".hidden",
		"100%",
	} {
		fmt.Println(filepath.ToSlash(output.RelPath("bucket", key)))
	}
	// Output:
	// bucket/logs/2024/app.log.gz.json
	// bucket/a.json
	// bucket/a/b.json
	// bucket/a%2Ejson/b.json
	// bucket/%2E./%2E./etc/passwd.json
	// bucket/a/%/b.json
	// bucket/%2Ehidden.json
	// bucket/100%25.json
}

func ExampleWriter_Write() {
	dir, err := os.MkdirTemp("", "palleto-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	w, err := output.NewWriter(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	r := output.Result{
		Bucket: "b", Key: "logs/app.log.gz", ETag: "9b2cf535f27731c974343645a3985328",
		Size: 1234, Bytes: 56789, Lines: 1000, Encoding: "gzip",
		Sequencer: "0055AED6DCD90281E5", MessageID: "m-1",
		ProcessedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
	}
	show := func(r output.Result) {
		path, outcome, err := w.Write(r)
		if err != nil {
			log.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Println(outcome, filepath.ToSlash(rel))
	}
	show(r) // first delivery
	show(r) // the same event delivered again

	older := r
	older.Sequencer = "0055AED6DCD90281E4"
	older.ETag = "0f343b0931126a20f133d67c2b018a3b"
	show(older) // an earlier upload's event, arriving late

	got, err := output.Read(w.Path("b", "logs/app.log.gz"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Sequencer, got.Lines)
	// Output:
	// written b/logs/app.log.gz.json
	// duplicate b/logs/app.log.gz.json
	// stale b/logs/app.log.gz.json
	// 0055AED6DCD90281E5 1000
}
