package local

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartServesOnLoopbackAndCloses(t *testing.T) {
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q, want http://127.0.0.1:PORT", s.Endpoint())
	}
	if s.Region() != DefaultRegion {
		t.Errorf("Region() = %q, want %q", s.Region(), DefaultRegion)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get(s.Endpoint()); err == nil {
		t.Error("the server still answers after Close")
	}
}

// A client that opened a connection and sent nothing on it does not make Close fail.
func TestCloseWithAnIdleNewConnection(t *testing.T) {
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := s.Close(); err != nil {
		t.Errorf("Close with a connection that sent nothing: %v", err)
	}
}

func TestS3RequestsDoNotReachSQS(t *testing.T) {
	s, err := Start(t.Context(), Options{Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Region() != "eu-west-1" {
		t.Errorf("Region() = %q", s.Region())
	}
	_, err = s.S3Client().ListBuckets(context.Background(), nil)
	var ae smithy.APIError
	if !errors.As(err, &ae) || strings.Contains(ae.ErrorCode(), "SQS") || strings.Contains(ae.ErrorCode(), "Unsupported") {
		// Until S3 is served, the S3 half answers NotImplemented; after, ListBuckets succeeds.
		if err != nil {
			t.Fatalf("ListBuckets: %v", err)
		}
	}
}
