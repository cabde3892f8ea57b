// Package leaktest prepares a package's tests for goleak: its Main runs them, then waits for
// the goroutines of the HTTP connections their clients held to see their servers close.
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(leaktest.Main(m)) }
package leaktest

import (
	"bytes"
	"runtime"
	"time"
)

// TestingM is what a TestMain runs: *testing.M, or a wrapper of it.
type TestingM interface {
	Run() int
}

// Main wraps m: see settled.
func Main(m TestingM) TestingM { return settled{m} }

// settled runs the tests, then waits for the goroutines of the HTTP
// connections that the tests' clients still held to end. A test's cleanup
// closes its servers, and with them the server side of each connection; the
// client side ends when its goroutine has read the close, which on a loaded
// machine (CI's race detector, every package's tests at once) can take longer
// than goleak waits. A connection still open after settleTimeout is left for
// goleak to report: its server was never closed.
type settled struct{ m TestingM }

// settleTimeout bounds the wait of settled.
const settleTimeout = 10 * time.Second

func (s settled) Run() int {
	code := s.m.Run()
	settle(openConns, settleTimeout)
	return code
}

// settle waits until count returns 0 or timeout has passed, and reports whether
// count reached 0.
func settle(count func() int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for count() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// openConns counts the goroutines of the process's HTTP client connections
// (each has a read loop and a write loop).
func openConns() int {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return bytes.Count(buf, []byte("net/http.(*persistConn).readLoop(")) +
		bytes.Count(buf, []byte("net/http.(*persistConn).writeLoop("))
}
