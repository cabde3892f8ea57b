package object

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Encoding is a content's compression format, told by its first bytes.
type Encoding string

// The encodings that Decode recognises. The names are those of the results
// file's "encoding" field.
const (
	None  Encoding = "none"
	Gzip  Encoding = "gzip"
	Zstd  Encoding = "zstd"
	Bzip2 Encoding = "bzip2"
)

// SniffLen is the number of leading bytes that Sniff looks at.
const SniffLen = 4

// MaxZstdWindow is the largest zstd window that Decode accepts: 128 MiB,
// what `zstd --long` and `zstd --ultra -22` write. Ordinary levels use at
// most 8 MiB. A larger window would let one object claim that much memory.
const MaxZstdWindow = 128 << 20

// readBufferSize is the buffer between the source and the decompressor.
// Large reads keep the per-read cost (a syscall, a TLS record, a checksum
// update in the SDK) small next to the decompression work.
const readBufferSize = 256 << 10

// Sniff tells the encoding of content that starts with prefix, which should
// hold its first SniffLen bytes (or the whole content if shorter).
func Sniff(prefix []byte) Encoding {
	switch {
	case len(prefix) >= 2 && prefix[0] == 0x1f && prefix[1] == 0x8b:
		return Gzip
	case len(prefix) >= 4 && bytes.Equal(prefix[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	case len(prefix) >= 4 && bytes.Equal(prefix[:3], []byte("BZh")) && prefix[3] >= '1' && prefix[3] <= '9':
		return Bzip2
	}
	return None
}

// Decode sniffs the encoding of r's content and returns a reader of the
// decompressed content. Concatenated gzip members, zstd frames and bzip2
// streams are read as one content, as gzip -d, zstd -d and bzip2 -d do.
//
// Errors that the decompressor finds, at once or while reading, are
// ErrCorrupt; errors of r itself are returned as they came, so that a
// dropped connection is never taken for a corrupt object nor a truncated
// one for a short count. Closing the returned reader releases the
// decompressor; it does not close r.
func Decode(r io.Reader) (io.ReadCloser, Encoding, error) {
	src := &source{r: r}
	br := bufPool.Get().(*bufio.Reader)
	br.Reset(src)
	d := &reader{src: src, br: br}
	head, err := br.Peek(SniffLen)
	if err != nil && err != io.EOF {
		d.Close()
		return nil, None, err
	}
	d.enc = Sniff(head)
	switch d.enc {
	case Gzip:
		// The gzip reader reads the bufio.Reader directly (it is a
		// flate.Reader), which takes flate's fastest path. Inflating is
		// ~95% of the time and cannot be split for one deflate stream;
		// klauspost/pgzip, which moves the checksum and copies to other
		// goroutines, measured no faster.
		z, _ := gzipPool.Get().(*gzip.Reader)
		if z == nil {
			z = new(gzip.Reader)
		}
		d.r, d.gz = z, z
		if err := z.Reset(br); err != nil {
			err = d.fail(err)
			d.Close()
			return nil, Gzip, err
		}
	case Zstd:
		z, err := newZstd(br)
		if err != nil {
			d.Close()
			return nil, Zstd, err
		}
		d.r, d.zs = z, z
	case Bzip2:
		d.r = bzip2.NewReader(br)
	default:
		d.r = br
	}
	return d, d.enc, nil
}

// Decoders are pooled because a zstd decoder allocates its window (up to
// 8 MiB at ordinary levels) and every decoder its read buffer: for the many
// small objects of a typical bucket, that would be most of the work. A
// pooled decoder holds no goroutine; one that met a large zstd window keeps
// it until the garbage collector empties the pool.
var (
	bufPool  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	gzipPool sync.Pool // *gzip.Reader
	zstdPool sync.Pool // *zstd.Decoder
)

func newZstd(r io.Reader) (*zstd.Decoder, error) {
	if z, ok := zstdPool.Get().(*zstd.Decoder); ok {
		if err := z.Reset(r); err == nil {
			return z, nil
		}
		z.Close()
	}
	// One decoder and no goroutines: decoding blocks ahead in parallel
	// measured no faster here, and costs a window per block in flight.
	z, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(MaxZstdWindow),
	)
	if err != nil {
		return nil, fmt.Errorf("object: zstd decoder: %w", err)
	}
	return z, nil
}

// source remembers the first error that the underlying reader returned, so
// that a decompressor's error can be told apart from the transport's: once
// the source has failed, whatever the decompressor says is a consequence.
type source struct {
	r   io.Reader
	err error
}

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// reader is the decompressed content of a source.
type reader struct {
	enc Encoding
	src *source
	r   io.Reader // what Read reads: a decompressor or br
	br  *bufio.Reader
	gz  *gzip.Reader
	zs  *zstd.Decoder
}

func (d *reader) Read(p []byte) (int, error) {
	if d.r == nil {
		return 0, errClosed
	}
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		err = d.fail(err)
	}
	return n, err
}

// WriteTo lets Count take the decompressor's output straight from its
// window, without a copy into a buffer of ours.
func (d *reader) WriteTo(w io.Writer) (int64, error) {
	if d.r == nil {
		return 0, errClosed
	}
	if wt, ok := d.r.(io.WriterTo); ok {
		gw := &guardedWriter{w: w}
		n, err := wt.WriteTo(gw)
		if err != nil {
			if gw.err != nil {
				return n, gw.err
			}
			return n, d.fail(err)
		}
		return n, nil
	}
	buf := make([]byte, readBufferSize)
	var total int64
	for {
		n, err := d.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
			if m != n {
				return total, io.ErrShortWrite
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close gives the decoder back to its pool. The reader fails from then on,
// since the decoder may already serve another content.
func (d *reader) Close() error {
	if d.br == nil {
		return nil
	}
	if d.gz != nil {
		// gzip.Reader.Close only reports the last error; Reset restores
		// the reader whatever state it was left in.
		gzipPool.Put(d.gz)
	}
	if d.zs != nil {
		if d.zs.Reset(nil) == nil {
			zstdPool.Put(d.zs)
		} else {
			d.zs.Close()
		}
	}
	d.br.Reset(nil)
	bufPool.Put(d.br)
	*d = reader{enc: d.enc, src: d.src}
	return nil
}

func (d *reader) fail(err error) error {
	if d.src.err != nil {
		return d.src.err
	}
	if d.enc == None {
		return err
	}
	return fmt.Errorf("%w (%s): %w", ErrCorrupt, d.enc, err)
}

// guardedWriter keeps the destination's own error, so that it is not
// reported as corrupt content.
type guardedWriter struct {
	w   io.Writer
	err error
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	n, err := g.w.Write(p)
	if err != nil && g.err == nil {
		g.err = err
	}
	return n, err
}

// Count reads r to its end and returns the number of bytes and of newline
// bytes ('\n') read. On error, the counts are those of what was read
// before it.
//
// Counting runs inline: bytes.Count is vectorised and counts ~10 GB/s, so
// handing the decompressed bytes to another goroutine would cost more than
// it saves.
func Count(r io.Reader) (n, lines int64, err error) {
	var c counter
	if wt, ok := r.(io.WriterTo); ok {
		_, err = wt.WriteTo(&c)
		return c.n, c.lines, err
	}
	buf := make([]byte, readBufferSize)
	for {
		m, rerr := r.Read(buf)
		c.Write(buf[:m])
		if rerr == io.EOF {
			return c.n, c.lines, nil
		}
		if rerr != nil {
			return c.n, c.lines, rerr
		}
	}
}

type counter struct{ n, lines int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.lines += int64(bytes.Count(p, newline))
	return len(p), nil
}

var newline = []byte{'\n'}
