package output

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// Suffix ends every result file name. Directory names never end with it (in any case).
	Suffix = ".json"

	// maxPart is the longest escaped part kept whole. With Suffix a file name stays well under
	// the 255-byte limit of common file systems, with room left for editors' backup names.
	maxPart = 200
	// hashPrefix is the most escaped bytes of a long part kept before its hash.
	hashPrefix = 160
	// hashMark separates a long part's prefix from its hash. Escaping never produces it: an
	// escaped "%" is always followed by two upper-case hex digits.
	hashMark = "%~"
	// hashLen is the number of hex digits of the SHA-256 of the raw part (128 bits).
	hashLen = 32
	// emptyPart stands for an empty part ("a//b", "/abs", "a/"); escaping never produces a
	// lone "%".
	emptyPart = "%"
	// tempPrefix starts temporary file names. Escaped parts never start with ".".
	tempPrefix = ".palleto-"
)

// RelPath is the path of the result file for key in bucket, relative to the output directory,
// with the operating system's separator. It is a pure function of its arguments; the package
// documentation gives the rules.
func RelPath(bucket, key string) string {
	return filepath.FromSlash(relSlash(bucket, key))
}

// relSlash is [RelPath] with "/" as separator, which is what [os.Root] takes on every system.
func relSlash(bucket, key string) string {
	var b strings.Builder
	b.Grow(len(bucket) + len(key) + len(Suffix) + 16)
	appendPart(&b, bucket, true)
	for {
		b.WriteByte('/')
		part, rest, more := strings.Cut(key, "/")
		appendPart(&b, part, more)
		if !more {
			break
		}
		key = rest
	}
	b.WriteString(Suffix)
	return b.String()
}

// appendPart writes the escaped form of one path part. A directory part must not end in
// Suffix, so that the file of key "a" (a.json) and the directory of key "a.json/b" differ.
func appendPart(b *strings.Builder, raw string, dir bool) {
	if raw == "" {
		b.WriteString(emptyPart)
		return
	}
	start := b.Len()
	// cut is the longest escaped length, at a character boundary, that fits in hashPrefix.
	cut := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		switch {
		case c < utf8.RuneSelf:
			if mustEscape(c) || (i == 0 && c == '.') {
				escapeByte(b, c)
			} else {
				b.WriteByte(c)
			}
			i++
		default:
			r, size := utf8.DecodeRuneInString(raw[i:])
			if (r == utf8.RuneError && size == 1) || !unicode.IsGraphic(r) {
				for j := range size {
					escapeByte(b, raw[i+j])
				}
			} else {
				b.WriteString(raw[i : i+size])
			}
			i += size
		}
		if n := b.Len() - start; n <= hashPrefix {
			cut = n
		}
	}
	if dir {
		s := b.String()[start:]
		if n := len(s); n >= len(Suffix) && strings.EqualFold(s[n-len(Suffix):], Suffix) {
			// The dot is a literal: an escape ends in a hex digit. Rewriting the tail keeps
			// the prefix cut valid, since the cut only matters when the part is long.
			tail := s[n-len(Suffix)+1:]
			truncate(b, start+n-len(Suffix))
			escapeByte(b, '.')
			b.WriteString(tail)
		}
	}
	if b.Len()-start <= maxPart {
		return
	}
	truncate(b, start+cut)
	sum := sha256.Sum256([]byte(raw))
	b.WriteString(hashMark)
	b.WriteString(hex.EncodeToString(sum[:hashLen/2]))
}

// mustEscape reports the ASCII bytes that are escaped anywhere in a part: the escape
// character itself, separators of any system, and control bytes.
func mustEscape(c byte) bool {
	return c < 0x20 || c == 0x7f || c == '%' || c == '/' || c == '\\'
}

func escapeByte(b *strings.Builder, c byte) {
	const digits = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(digits[c>>4])
	b.WriteByte(digits[c&0xf])
}

// truncate shortens b to n bytes. strings.Builder cannot shrink, so it is rebuilt; this only
// happens for parts ending in Suffix or longer than maxPart.
func truncate(b *strings.Builder, n int) {
	s := b.String()[:n]
	b.Reset()
	b.Grow(n + len(hashMark) + hashLen + 4)
	b.WriteString(s)
}
