// Command pipebench measures `palleto run` end to end against a hand-written
// pipeline on the same objects, for bench/pipeline.sh:
//
//	pipebench backend -latency 10ms       fauxqs and an in-memory S3 (gofakes3), each
//	                                      behind a proxy that adds a round trip
//	pipebench objects -s3 URL -bucket B -n N
//	                                      creates the bucket and uploads N .gz objects
//	pipebench notify -sqs URL -queue Q -bucket B -n N
//	                                      creates queue Q with one S3 notification per object
//	pipebench loop -queue-url URL -out DIR -n N
//	                                      the hand-written baseline (8 goroutines)
//	pipebench exec -- CMD ARGS…           runs CMD and prints its wall time and rusage
//	pipebench check -out DIR -bucket B -n N
//	                                      checks every result file against the objects
//	pipebench report FILE                 medians of 3 and ratios to the loop, as Markdown
//
// Every server listens on 127.0.0.1. The objects are a pure function of their
// index, so that check knows what each result must say without a manifest.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pipebench backend|objects|notify|loop|exec|check|report …")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "backend":
		err = backendCmd(ctx, args)
	case "objects":
		err = objectsCmd(ctx, args)
	case "notify":
		err = notifyCmd(ctx, args)
	case "loop":
		err = loopCmd(ctx, args)
	case "exec":
		err = execCmd(ctx, args)
	case "check":
		err = checkCmd(args)
	case "report":
		err = reportCmd(args)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipebench:", err)
		os.Exit(1)
	}
}
