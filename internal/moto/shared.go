package moto

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// TestingM is what a TestMain runs: *testing.M, or a wrapper of it such as
// the one SharedMain returns. goleak.VerifyTestMain takes one.
type TestingM interface {
	Run() int
}

// shared is the server that the tests of one package share.
var shared struct {
	mu      sync.Mutex
	enabled bool
	s       *Server
	err     error
}

// SharedMain wraps m so that the package's tests can share one server
// through Shared: started on first use, stopped when m.Run returns (so before
// goleak looks for goroutines). Use it as
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(moto.SharedMain(m)) }
func SharedMain(m TestingM) TestingM { return sharedMain{m} }

type sharedMain struct{ m TestingM }

func (r sharedMain) Run() int {
	shared.mu.Lock()
	shared.enabled = true
	shared.mu.Unlock()
	code := r.m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		if err := shared.s.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
		shared.s = nil
	}
	return code
}

// Shared returns the server that the package's tests share, starting it on
// first use; TestMain must run SharedMain. Tests that share a server must
// not share names: give each its own queues and buckets, or call Reset from
// tests that do not run in parallel.
func Shared(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.enabled {
		t.Fatal("moto: Shared needs TestMain to run moto.SharedMain(m)")
	}
	if shared.s == nil && shared.err == nil {
		// Not t.Context(): the server outlives this test.
		shared.s, shared.err = Start(context.Background(), nil)
	}
	if shared.err != nil {
		t.Fatalf("moto: %v", shared.err)
	}
	s := shared.s
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moto_server output, shared by the package's tests (last %d bytes):\n%s", tailSize, s.Output())
		}
	})
	return s
}

// SharedOrStart returns the shared server when TestMain runs SharedMain, and
// otherwise starts a server for the test alone (see StartT).
func SharedOrStart(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	enabled := shared.enabled
	shared.mu.Unlock()
	if enabled {
		return Shared(t)
	}
	return StartT(t)
}
