package local

import (
	"bytes"
	"net/http"
)

// responseBuffer is an http.ResponseWriter that keeps the whole answer, for
// handlers that must see an answer before the client does.
type responseBuffer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newResponseBuffer() *responseBuffer {
	return &responseBuffer{header: http.Header{}}
}

func (b *responseBuffer) Header() http.Header { return b.header }

func (b *responseBuffer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// code is the status written, 200 if none was.
func (b *responseBuffer) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

// ok reports a 2xx answer.
func (b *responseBuffer) ok() bool { return b.code() >= 200 && b.code() < 300 }

// copyTo sends the answer to w.
func (b *responseBuffer) copyTo(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range b.header {
		h[k] = v
	}
	w.WriteHeader(b.code())
	_, _ = w.Write(b.body.Bytes())
}
