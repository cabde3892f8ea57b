package leaktest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(Main(m)) }

// A client's connection stays open while its server does, and settle says so when its time is
// up; once the server has closed, settle sees the connection's goroutines end.
func TestSettleWaitsForConnectionsToSeeTheirServerClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close() // the connection goes back to the client's pool, open

	if n := openConns(); n != 2 {
		t.Fatalf("openConns() = %d with one idle connection, want 2 (its read and write loops)", n)
	}
	if settle(openConns, 50*time.Millisecond) {
		t.Fatal("settle reported no connection left while the server still holds one open")
	}
	srv.Close() // closes the server's side; the client's goroutines see it and end
	if !settle(openConns, settleTimeout) {
		t.Fatalf("%d goroutines of client connections left %v after their server closed", openConns(), settleTimeout)
	}
}
