package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/palleto/palleto/local"
)

func init() { commands["local"] = localCmd }

// localCmd serves the embedded SQS and S3 until SIGINT or SIGTERM, for the AWS CLI, boto3
// or a service under development to use.
func localCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:4566", "address to serve SQS and S3 on (loopback unless you mean otherwise)")
	region := fs.String("region", local.DefaultRegion, "region of the queue ARNs")
	if err := parse(fs, args, os.Getenv); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return usagef("--listen %q: %v", *listen, err)
	}
	if *region == "" {
		return usagef("--region: empty")
	}
	srv, err := local.Start(ctx, local.Options{Addr: *listen, Region: *region})
	if err != nil {
		return err
	}
	if !isLoopback(host) {
		fmt.Fprintf(stderr, "palleto local: WARNING: serving on %s, which is not a loopback address: whoever can reach it can read, write and delete every queue and bucket, and no credentials are checked.\n", srv.Addr())
	}
	fmt.Fprintf(stdout, `Serving SQS and S3 at %s (region %s, account %s). Stop with Ctrl-C.
Point clients at it with:
  export AWS_ENDPOINT_URL=%s
  export AWS_REGION=%s
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
S3 clients need path-style addressing (the AWS CLI: aws configure set default.s3.addressing_style path).
`, srv.Endpoint(), srv.Region(), local.Account, srv.Endpoint(), srv.Region())
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	fmt.Fprintln(stdout, "Stopped; the queues and buckets are gone.")
	return nil
}

// isLoopback: the host is a loopback address or localhost. An empty host (":4566") is every
// interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
