// Package awstest gives integration tests their AWS endpoint: the embedded
// SQS and S3 of package local always, and moto_server as a second opinion
// when it is on the PATH. A test written once runs against both:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(awstest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		awstest.Each(t, func(t *testing.T, b awstest.Backend) {
//			q, err := moto.CreateQueue(t.Context(), b.SQS(), "events", moto.QueueOptions{})
//			...
//		})
//	}
//
// Without moto_server the "moto" subtests skip, saying why. With
// PALLETO_MOTO=required in the environment (as .ci/run sets it) they fail
// instead, so that CI cannot pass on one backend unnoticed (see
// moto.SkipIfMissing).
package awstest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/internal/leaktest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/internal/sdkhttp"
	"github.com/palleto/palleto/local"
)

// Names of the backends, as Each names its subtests.
const (
	LocalName = "local"
	MotoName  = "moto"
)

// Backend is one AWS endpoint a test runs against.
type Backend struct {
	// Name is LocalName or MotoName.
	Name string
	// URL is the endpoint: AWS_ENDPOINT_URL, aws.Config.BaseEndpoint.
	URL string
	// Local is the embedded server (Name == LocalName), else nil. Each
	// test gets a server of its own.
	Local *local.Server
	// Moto is the moto_server (Name == MotoName), else nil. It is shared by
	// the package's tests: give queues and buckets names of the test's own.
	Moto *moto.Server
}

// Config is a client configuration for the backend, or for another
// endpoint (a fault proxy in front of it) when endpoint is not empty:
// region us-east-1, static credentials, quick retries.
func (b Backend) Config(endpoint string) aws.Config {
	if endpoint == "" {
		endpoint = b.URL
	}
	return moto.Config(endpoint)
}

// SQS returns an SQS client for the backend.
func (b Backend) SQS() *sqs.Client { return sqs.NewFromConfig(b.Config(""), sdkhttp.OwnSQSBodies) }

// S3 returns an S3 client for the backend, with path-style addressing.
func (b Backend) S3() *s3.Client {
	return s3.NewFromConfig(b.Config(""), func(o *s3.Options) { o.UsePathStyle = true })
}

// Main wraps m so that the package's tests can share one moto_server, stopped
// when m.Run returns (so before goleak looks for goroutines), and so that
// goleak does not count the connections of clients whose server has closed
// (see leaktest.Main).
func Main(m moto.TestingM) moto.TestingM { return leaktest.Main(moto.SharedMain(m)) }

// Each runs f as subtest "local" against a fresh embedded server, and as
// subtest "moto" against the package's shared moto_server, skipped when
// moto_server is not on the PATH.
func Each(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	t.Run(LocalName, func(t *testing.T) { f(t, Local(t)) })
	t.Run(MotoName, func(t *testing.T) { f(t, Moto(t)) })
}

// Local starts an embedded server for the test and closes it when the test
// ends.
func Local(t testing.TB) Backend {
	t.Helper()
	s := LocalWith(t, local.Options{})
	return Backend{Name: LocalName, URL: s.Endpoint(), Local: s}
}

// LocalWith starts an embedded server with the given options (faults, a
// region) for the test and closes it when the test ends.
func LocalWith(t testing.TB, o local.Options) *local.Server {
	t.Helper()
	s, err := local.Start(context.Background(), o)
	if err != nil {
		t.Fatalf("local: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("local: close: %v", err)
		}
	})
	return s
}

// Moto returns the package's shared moto_server when TestMain runs Main, or
// else one for the test alone; it skips the test when moto_server is not on
// the PATH.
func Moto(t testing.TB) Backend {
	t.Helper()
	s := moto.SharedOrStart(t)
	return Backend{Name: MotoName, URL: s.URL(), Moto: s}
}
