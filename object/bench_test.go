package object

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// logLines returns about size bytes of web-server-like log lines: the kind
// of content the pipeline reads, neither trivially compressible nor random.
func logLines(size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/api/v1/users", "/api/v1/orders", "/static/app.js", "/healthz", "/api/v2/search", "/login"}
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	statuses := []int{200, 200, 200, 201, 304, 404, 500}
	b := make([]byte, 0, size+256)
	t := int64(1700000000)
	for len(b) < size {
		t += int64(r.IntN(3))
		b = fmt.Appendf(b, "%d 10.%d.%d.%d %s %s?id=%d %d %dms req=%016x\n",
			t, r.IntN(256), r.IntN(256), r.IntN(256), methods[r.IntN(len(methods))],
			paths[r.IntN(len(paths))], r.IntN(100000), statuses[r.IntN(len(statuses))], r.IntN(2000), r.Uint64())
	}
	return b
}

const benchSize = 16 << 20

func BenchmarkCount(b *testing.B) {
	data := logLines(benchSize)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := Count(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkAnalyze(b *testing.B, plain, stored []byte) {
	f := newFakeS3("b")
	f.put("k", stored)
	b.SetBytes(int64(len(plain))) // throughput in decompressed bytes, as wc sees them
	b.ReportAllocs()
	for b.Loop() {
		_, st, err := Analyze(b.Context(), f, "b", "k", "")
		if err != nil {
			b.Fatal(err)
		}
		if st.Bytes != int64(len(plain)) {
			b.Fatalf("%d bytes, want %d", st.Bytes, len(plain))
		}
	}
}

func BenchmarkAnalyzeGzip(b *testing.B) {
	data := logLines(benchSize)
	benchmarkAnalyze(b, data, gz(b, data))
}

func BenchmarkAnalyzeZstd(b *testing.B) {
	data := logLines(benchSize)
	benchmarkAnalyze(b, data, zs(b, data))
}

func BenchmarkAnalyzeBzip2(b *testing.B) {
	benchmarkAnalyze(b, fixture(b, "lines.txt"), fixture(b, "lines.bz2"))
}

func BenchmarkAnalyzePlain(b *testing.B) {
	data := logLines(benchSize)
	benchmarkAnalyze(b, data, data)
}
