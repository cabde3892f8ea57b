package output

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var hostileKeys = []string{
	"..",
	"../../etc/passwd",
	"/abs",
	"/",
	"//",
	"a//b",
	"a/",
	"a/.",
	"a/..",
	"a\x00b",
	"\x00",
	"\x01",
	"\x7f",
	`\..\`,
	`..\..\x`,
	strings.Repeat("k", 1024),
	strings.Repeat("/", 1024),
	strings.Repeat("..", 512),
	strings.Repeat("\x01", 1024),
	strings.Repeat("é", 300),
	strings.Repeat("é", 299) + "e",
	strings.Repeat("a/", 511) + "ab",
	"a",
	"a/b",
	"a.json",
	"a.json/b",
	"a.JSON/b",
	"a.json.json",
	"%2F",
	"%",
	"%~",
	"%00",
	"%2E",
	".",
	".hidden",
	".palleto-x.tmp",
	"",
	"\xff\xfe",
	"\uFFFD",
	"rtl\u202Etxt.exe",
	"line\u2028sep",
	"the/original key.gz",
	"logs/2024/app.log.gz",
}

// TestRelPathReadable pins the layout users see for ordinary and for awkward keys.
func TestRelPathReadable(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct{ bucket, key, want string }{
		{"b", "logs/2024/app.log.gz", "b/logs/2024/app.log.gz.json"},
		{"b", "the/original key.gz", "b/the/original key.gz.json"},
		{"b", "a", "b/a.json"},
		{"b", "a/b", "b/a/b.json"},
		{"b", "a.json", "b/a.json.json"},
		{"b", "a.json/b", "b/a%2Ejson/b.json"},
		{"b", "a.JSON/b", "b/a%2EJSON/b.json"},
		{"b", "%2F", "b/%252F.json"},
		{"b", ".", "b/%2E.json"},
		{"b", "..", "b/%2E..json"},
		{"b", "../../etc/passwd", "b/%2E./%2E./etc/passwd.json"},
		{"b", ".hidden", "b/%2Ehidden.json"},
		{"b", "a//b", "b/a/%/b.json"},
		{"b", "/abs", "b/%/abs.json"},
		{"b", "a/", "b/a/%.json"},
		{"b", "a\x00b", "b/a%00b.json"},
		{"b", `\..\`, "b/%5C..%5C.json"},
		{"b", "\xff", "b/%FF.json"},
		{"b", "rtl\u202Etxt", "b/rtl%E2%80%AEtxt.json"},
		{"b", "café", "b/café.json"},
		{"b", long, "b/" + strings.Repeat("é", 80) + "%~" + "~HASH~" + ".json"},
		{"a/b", "c", "a%2Fb/c.json"},
		{"..", "c", "%2E./c.json"},
		{"", "c", "%/c.json"},
	}
	for _, tt := range tests {
		got := relSlash(tt.bucket, tt.key)
		want := tt.want
		if strings.Contains(want, "~HASH~") {
			// The hash itself is checked against an independent digest in TestLongPart.
			i := strings.Index(got, "%~")
			if i < 0 || len(got) < i+2+hashLen {
				t.Errorf("relSlash(%q, %q) = %q, want a hashed part", tt.bucket, tt.key, got)
				continue
			}
			want = strings.Replace(want, "~HASH~", got[i+2:i+2+hashLen], 1)
		}
		if got != want {
			t.Errorf("relSlash(%q, %q) = %q, want %q", tt.bucket, tt.key, got, want)
		}
		if RelPath(tt.bucket, tt.key) != filepath.FromSlash(got) {
			t.Errorf("RelPath(%q, %q) does not match relSlash", tt.bucket, tt.key)
		}
	}
}

func TestLongPart(t *testing.T) {
	// sha256("k" × 1024), first 16 bytes, computed with sha256sum.
	const wantHash = "fb236ae29378d0cf16cdc6b4b5b9f82d"
	got := relSlash("b", strings.Repeat("k", 1024))
	want := "b/" + strings.Repeat("k", hashPrefix) + "%~" + wantHash + ".json"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// A prefix is cut between escapes, never inside one.
	got = relSlash("b", strings.Repeat("\x01", 100))
	if !strings.HasPrefix(got, "b/"+strings.Repeat("%01", hashPrefix/3)+"%~") {
		t.Errorf("escaped prefix cut badly: %q", got)
	}
	// A part of exactly maxPart escaped bytes is kept; one more byte is hashed.
	if got := relSlash("b", strings.Repeat("x", maxPart)); strings.Contains(got, "%~") {
		t.Errorf("part of %d bytes was hashed", maxPart)
	}
	if got := relSlash("b", strings.Repeat("x", maxPart+1)); !strings.Contains(got, "%~") {
		t.Errorf("part of %d bytes was not hashed", maxPart+1)
	}
}

// checkRel checks the properties every result path must have, whatever the input.
func checkRel(t *testing.T, bucket, key, rel string) {
	t.Helper()
	if !filepath.IsLocal(rel) {
		t.Fatalf("RelPath(%q, %q) = %q is not local", bucket, key, rel)
	}
	dir := filepath.FromSlash("/srv/out")
	full := filepath.Join(dir, rel)
	r, err := filepath.Rel(dir, full)
	if err != nil || r != rel || strings.HasPrefix(r, "..") || filepath.IsAbs(r) {
		t.Fatalf("RelPath(%q, %q) = %q resolves to %q outside the directory (%v)", bucket, key, rel, r, err)
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if want := 2 + strings.Count(key, "/"); len(parts) != want {
		t.Fatalf("RelPath(%q, %q) = %q has %d parts, want %d", bucket, key, rel, len(parts), want)
	}
	for i, p := range parts {
		last := i == len(parts)-1
		switch {
		case len(p) >= 255:
			t.Fatalf("RelPath(%q, %q): part %d is %d bytes", bucket, key, i, len(p))
		case p == "" || p == "." || p == "..":
			t.Fatalf("RelPath(%q, %q): part %d is %q", bucket, key, i, p)
		case strings.HasPrefix(p, "."):
			t.Fatalf("RelPath(%q, %q): part %q is hidden or looks temporary", bucket, key, p)
		case strings.ContainsAny(p, "/\\\x00"):
			t.Fatalf("RelPath(%q, %q): part %q holds a separator or NUL", bucket, key, p)
		case !utf8.ValidString(p):
			t.Fatalf("RelPath(%q, %q): part %q is not UTF-8", bucket, key, p)
		case last != strings.HasSuffix(strings.ToLower(p), Suffix):
			t.Fatalf("RelPath(%q, %q): part %q: last=%v but suffix disagrees", bucket, key, p, last)
		}
		for _, c := range p {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("RelPath(%q, %q): part %q holds a control character", bucket, key, p)
			}
		}
	}
}

func TestHostileKeys(t *testing.T) {
	files := make(map[string]string) // path → key
	dirs := make(map[string]bool)
	for _, bucket := range []string{"b", "c"} {
		for _, key := range hostileKeys {
			rel := RelPath(bucket, key)
			checkRel(t, bucket, key, rel)
			id := bucket + "\x00" + key
			if other, ok := files[rel]; ok {
				t.Errorf("%q and %q share %q", id, other, rel)
			}
			files[rel] = id
			for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
				dirs[strings.ToLower(d)] = true
			}
		}
	}
	// Even where names are compared without case, no file takes a directory's name.
	for f, id := range files {
		if dirs[strings.ToLower(f)] {
			t.Errorf("the file of %q is another key's directory", id)
		}
	}
}

// TestHostileKeysOnDisk writes every hostile key and reads each back: each lands in its own
// file inside the directory, and nothing else is left there.
func TestHostileKeysOnDisk(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "out")
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	want := make(map[string]bool)
	for _, bucket := range []string{"b", "..", "/", ""} {
		for _, key := range hostileKeys {
			if bucket != "b" && strings.Count(key, "/") > 8 {
				continue // one bucket is enough for the deep keys, which cost a sync per level
			}
			p, outcome, err := w.Write(result(bucket, key, "01"))
			if err != nil {
				t.Fatalf("Write(%q, %q): %v", bucket, key, err)
			}
			if outcome != Written {
				t.Fatalf("Write(%q, %q) = %v, want written", bucket, key, outcome)
			}
			if p != w.Path(bucket, key) {
				t.Fatalf("Write returned %q, Path says %q", p, w.Path(bucket, key))
			}
			want[p] = true
			got, err := Read(p)
			if err != nil {
				t.Fatal(err)
			}
			if got.Bucket != jsonString(bucket) || got.Key != jsonString(key) {
				t.Fatalf("%s holds %q/%q, want %q/%q", p, got.Bucket, got.Key, bucket, key)
			}
		}
	}
	want[filepath.Join(dir, OpenMarker)] = true // the Writer is open
	var found int
	err = filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		found++
		if !want[p] {
			t.Errorf("unexpected file %q", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found != len(want) {
		t.Errorf("found %d files, want %d", found, len(want))
	}
}

// jsonString is s as JSON carries it: each byte that is not valid UTF-8 becomes U+FFFD.
func jsonString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func TestSymlinkDoesNotEscape(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "b")); err != nil {
		t.Skip("cannot make a symbolic link:", err)
	}
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := w.Write(result("b", "k", "01")); err == nil {
		t.Error("Write through a link leading outside succeeded")
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("Write left %d entries outside the directory", len(entries))
	}
}
