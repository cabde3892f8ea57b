package object

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/awstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(awstest.Main(m)) }

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gz compresses each part as a gzip member of its own.
func gz(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, p := range parts {
		w := gzip.NewWriter(&out)
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

// zs compresses each part as a zstd frame of its own.
func zs(t testing.TB, parts ...[]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, p := range parts {
		w, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out.Bytes()
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// newlines counts '\n' the slow way, as an oracle independent of Count.
func newlines(b []byte) int64 {
	var n int64
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

// decodeCount runs Decode and Count as Analyze does, over a source that
// returns short reads.
func decodeCount(src []byte) (Encoding, int64, int64, error) {
	dec, enc, err := Decode(iotest.HalfReader(bytes.NewReader(src)))
	if err != nil {
		return enc, 0, 0, err
	}
	defer dec.Close()
	n, lines, err := Count(dec)
	return enc, n, lines, err
}

func TestSniff(t *testing.T) {
	tests := []struct {
		in   []byte
		want Encoding
	}{
		{nil, None},
		{[]byte{0x1f}, None},
		{[]byte{0x1f, 0x8b}, Gzip},
		{[]byte{0x1f, 0x8b, 0x08, 0x00}, Gzip},
		{[]byte{0x8b, 0x1f}, None},
		{[]byte{0x28, 0xb5, 0x2f, 0xfd}, Zstd},
		{[]byte{0x28, 0xb5, 0x2f}, None},
		{[]byte{0x28, 0xb5, 0x2f, 0xfe}, None},
		{[]byte("BZh1"), Bzip2},
		{[]byte("BZh9"), Bzip2},
		{[]byte("BZh0"), None},
		{[]byte("BZh:"), None},
		{[]byte("BZh"), None},
		{[]byte("BZ"), None},
		{[]byte("hello"), None},
	}
	for _, tt := range tests {
		if got := Sniff(tt.in); got != tt.want {
			t.Errorf("Sniff(% x) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type roundTrip struct {
	name string
	src  []byte // as stored
	want []byte // decompressed
	enc  Encoding
}

func roundTrips(t *testing.T) []roundTrip {
	lines := fixture(t, "lines.txt")
	noEOL := []byte("first\nsecond\nno newline at the end")
	empty := []byte{}
	return []roundTrip{
		{"none/lines", lines, lines, None},
		{"none/empty", empty, empty, None},
		{"none/one byte", []byte("x"), []byte("x"), None},
		{"none/only newlines", []byte("\n\n\n"), []byte("\n\n\n"), None},
		{"none/no trailing newline", noEOL, noEOL, None},
		{"none/starts like bzip2", []byte("BZh"), []byte("BZh"), None},

		{"gzip/lines", gz(t, lines), lines, Gzip},
		{"gzip/lines by gzip(1)", fixture(t, "lines.gz"), lines, Gzip},
		{"gzip/empty", gz(t, empty), empty, Gzip},
		{"gzip/no trailing newline", gz(t, noEOL), noEOL, Gzip},
		{"gzip/multi-member", gz(t, lines[:1000], noEOL, empty, lines[1000:]), cat(lines[:1000], noEOL, lines[1000:]), Gzip},

		{"zstd/lines", zs(t, lines), lines, Zstd},
		{"zstd/lines by zstd(1)", fixture(t, "lines.zst"), lines, Zstd},
		{"zstd/empty", zs(t, empty), empty, Zstd},
		{"zstd/no trailing newline", zs(t, noEOL), noEOL, Zstd},
		{"zstd/multi-frame", zs(t, lines[:1000], noEOL, empty, lines[1000:]), cat(lines[:1000], noEOL, lines[1000:]), Zstd},

		{"bzip2/lines", fixture(t, "lines.bz2"), lines, Bzip2},
		{"bzip2/empty", fixture(t, "empty.bz2"), empty, Bzip2},
		{"bzip2/no trailing newline", fixture(t, "noeol.bz2"), noEOL, Bzip2},
		{"bzip2/multi-stream", cat(fixture(t, "noeol.bz2"), fixture(t, "lines.bz2")), cat(noEOL, lines), Bzip2},
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	for _, tt := range roundTrips(t) {
		t.Run(tt.name, func(t *testing.T) {
			enc, n, lines, err := decodeCount(tt.src)
			if err != nil {
				t.Fatalf("Decode+Count: %v", err)
			}
			if enc != tt.enc {
				t.Errorf("encoding = %q, want %q", enc, tt.enc)
			}
			if n != int64(len(tt.want)) || lines != newlines(tt.want) {
				t.Errorf("Count = %d bytes, %d lines; want %d bytes, %d lines", n, lines, len(tt.want), newlines(tt.want))
			}

			// Read, as opposed to WriteTo, must give the same content.
			dec, _, err := Decode(iotest.OneByteReader(bytes.NewReader(tt.src)))
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			got, err := io.ReadAll(iotest.HalfReader(dec))
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("content differs: got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	lines := fixture(t, "lines.txt")
	stored := map[Encoding][]byte{
		Gzip:  fixture(t, "lines.gz"),
		Zstd:  fixture(t, "lines.zst"),
		Bzip2: fixture(t, "lines.bz2"),
	}
	small := map[Encoding][]byte{
		Gzip:  gz(t, []byte("a\nb\n")),
		Zstd:  zs(t, []byte("a\nb\n")),
		Bzip2: fixture(t, "noeol.bz2"),
	}
	garbage := []byte("this is not a compressed stream\n")
	for _, enc := range []Encoding{Gzip, Zstd, Bzip2} {
		src := stored[enc]
		cases := map[string][]byte{
			"truncated in the header":  src[:5],
			"truncated in the middle":  src[:len(src)/2],
			"last byte missing":        src[:len(src)-1],
			"followed by garbage":      cat(src, garbage),
			"followed by a lone byte":  cat(src, []byte{0}),
			"followed by another sort": cat(src, gz(t, lines[:100]), zs(t, lines[:100])),
		}
		for _, off := range []int{len(src) / 3, len(src) / 2, len(src) - 6} {
			damaged := bytes.Clone(src)
			damaged[off] ^= 0x55
			cases[fmt.Sprintf("byte %d of %d damaged", off, len(src))] = damaged
		}
		if enc == Bzip2 {
			// A bzip2 stream is a run of independent blocks; dropping a
			// whole range from the middle must not go unnoticed either.
			cases["middle cut out"] = cat(src[:len(src)/3], src[2*len(src)/3:])
		}
		// Every truncation of a small stream that still shows its magic
		// bytes (shorter ones are plain content).
		s := small[enc]
		magic := map[Encoding]int{Gzip: 2, Zstd: 4, Bzip2: 4}[enc]
		for i := magic; i < len(s); i++ {
			cases[fmt.Sprintf("small cut at %d of %d", i, len(s))] = s[:i]
		}
		for name, src := range cases {
			t.Run(string(enc)+"/"+name, func(t *testing.T) {
				got, n, lines, err := decodeCount(src)
				if got != enc {
					t.Errorf("encoding = %q, want %q", got, enc)
				}
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v (counted %d bytes, %d lines), want ErrCorrupt", err, n, lines)
				}
			})
		}
	}
}

func TestDecodeZstdWindowLimit(t *testing.T) {
	// A frame header that asks for a 1 GiB window: Window_Descriptor
	// exponent 20 (2^(10+20)), single segment flag off, no checksum.
	src := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 20 << 3, 0x01, 0x00, 0x00}
	_, _, _, err := decodeCount(src)
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, zstd.ErrWindowSizeExceeded) {
		t.Fatalf("err = %v, want ErrCorrupt wrapping zstd.ErrWindowSizeExceeded", err)
	}
}

// A failing source is the transport's failure, never corrupt content.
func TestDecodeSourceError(t *testing.T) {
	errBoom := errors.New("connection reset")
	for _, tt := range roundTrips(t) {
		if len(tt.src) < 8 {
			continue
		}
		for _, cut := range []int{2, len(tt.src) / 2, len(tt.src)} {
			t.Run(fmt.Sprintf("%s/at %d", tt.name, cut), func(t *testing.T) {
				src := io.MultiReader(bytes.NewReader(tt.src[:cut]), iotest.ErrReader(errBoom))
				dec, _, err := Decode(src)
				if err == nil {
					defer dec.Close()
					_, _, err = Count(dec)
				}
				if !errors.Is(err, errBoom) || errors.Is(err, ErrCorrupt) {
					t.Fatalf("err = %v, want the source's error and not ErrCorrupt", err)
				}
			})
		}
	}
}

// The destination's error is the destination's, not corrupt content.
func TestDecodeWriteToError(t *testing.T) {
	errFull := errors.New("disk full")
	lines := fixture(t, "lines.txt")
	for _, src := range [][]byte{lines, gz(t, lines), zs(t, lines), fixture(t, "lines.bz2")} {
		dec, enc, err := Decode(bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		_, err = dec.(io.WriterTo).WriteTo(failingWriter{errFull})
		dec.Close()
		if !errors.Is(err, errFull) || errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want the writer's error", enc, err)
		}
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write(p []byte) (int, error) { return 0, w.err }

func TestCount(t *testing.T) {
	lines := fixture(t, "lines.txt")
	big := bytes.Repeat(lines, 4) // larger than one read buffer
	for _, b := range [][]byte{nil, []byte("\n"), []byte("no newline"), []byte("a\r\nb\r\n"), lines, big} {
		readers := map[string]io.Reader{
			"WriterTo":  bytes.NewReader(b),
			"one byte":  iotest.OneByteReader(bytes.NewReader(b)),
			"data+EOF":  iotest.DataErrReader(bytes.NewReader(b)),
			"half read": iotest.HalfReader(bytes.NewReader(b)),
		}
		for name, r := range readers {
			n, l, err := Count(r)
			if err != nil || n != int64(len(b)) || l != newlines(b) {
				t.Errorf("%s over %d bytes: Count = %d, %d, %v; want %d, %d, nil", name, len(b), n, l, err, len(b), newlines(b))
			}
		}
	}

	errBoom := errors.New("boom")
	n, l, err := Count(io.MultiReader(bytes.NewReader([]byte("a\nb\n")), iotest.ErrReader(errBoom)))
	if !errors.Is(err, errBoom) || n != 4 || l != 2 {
		t.Errorf("Count over a failing reader = %d, %d, %v; want 4, 2, %v", n, l, err, errBoom)
	}
}

func TestDecodeClose(t *testing.T) {
	for _, src := range [][]byte{[]byte("a\n"), gz(t, []byte("a\n")), zs(t, []byte("a\n")), fixture(t, "noeol.bz2")} {
		dec, enc, err := Decode(bytes.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		if err := dec.Close(); err != nil {
			t.Fatal(err)
		}
		if err := dec.Close(); err != nil {
			t.Fatalf("%s: second Close: %v", enc, err)
		}
		// The decoder went back to the pool: the closed reader must not
		// reach it, nor call its own failure corrupt content.
		if n, err := dec.Read(make([]byte, 10)); n != 0 || err == nil || errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Read after Close = %d, %v", enc, n, err)
		}
		if _, _, err := Count(dec); err == nil || errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Count after Close: %v", enc, err)
		}
	}
}

// Pooled decoders must not carry state from one content to the next, nor
// be shared by two.
func TestDecodeConcurrent(t *testing.T) {
	cases := roundTrips(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range len(cases) {
				tt := cases[(i*7+w)%len(cases)]
				_, n, lines, err := decodeCount(tt.src)
				if err != nil || n != int64(len(tt.want)) || lines != newlines(tt.want) {
					t.Errorf("%s: %d bytes, %d lines, %v", tt.name, n, lines, err)
				}
			}
		})
	}
	wg.Wait()
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("plain\ntext\n"))
	f.Add(gz(f, []byte("a\nb\n")))
	f.Add(zs(f, []byte("a\nb\n")))
	f.Add(fixture(f, "noeol.bz2"))
	f.Add([]byte("BZh9"))
	f.Fuzz(func(t *testing.T, src []byte) {
		enc, n, lines, err := decodeCount(src)
		if enc != Sniff(src) {
			t.Fatalf("encoding %q, Sniff says %q", enc, Sniff(src))
		}
		if enc == None && (err != nil || n != int64(len(src)) || lines != newlines(src)) {
			t.Fatalf("plain content: %d bytes, %d lines, %v", n, lines, err)
		}
		if err != nil && enc != None && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error of a well-behaved source is not ErrCorrupt: %v", err)
		}
	})
}
