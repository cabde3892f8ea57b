package output

import (
	"strconv"
	"strings"
	"testing"
)

// undo inverts the mapping of a path without hashed parts.
func undo(t *testing.T, rel string) (bucket, key string) {
	t.Helper()
	parts := strings.Split(strings.TrimSuffix(rel, Suffix), "/")
	for i, p := range parts {
		if p == emptyPart {
			parts[i] = ""
			continue
		}
		var b strings.Builder
		for j := 0; j < len(p); j++ {
			if p[j] != '%' {
				b.WriteByte(p[j])
				continue
			}
			n, err := strconv.ParseUint(p[j+1:j+3], 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q: %v", rel, err)
			}
			b.WriteByte(byte(n))
			j += 2
		}
		parts[i] = b.String()
	}
	return parts[0], strings.Join(parts[1:], "/")
}

func FuzzPath(f *testing.F) {
	for _, k := range hostileKeys {
		f.Add("b", k, "b", k+"/x")
		f.Add("b", k, "c", k)
	}
	f.Add("b", "a", "b", "a.json")
	f.Add("b", "a", "b", "a/b")
	f.Add("b", "a.json/b", "b", "a")
	f.Fuzz(func(t *testing.T, b1, k1, b2, k2 string) {
		r1, r2 := RelPath(b1, k1), RelPath(b2, k2)
		checkRel(t, b1, k1, r1)
		checkRel(t, b2, k2, r2)
		s1, s2 := relSlash(b1, k1), relSlash(b2, k2)
		if (b1 != b2 || k1 != k2) && s1 == s2 {
			t.Fatalf("%q/%q and %q/%q share %q", b1, k1, b2, k2, s1)
		}
		if !strings.Contains(s1, hashMark) {
			if b, k := undo(t, s1); b != b1 || k != k1 {
				t.Fatalf("%q undoes to %q/%q, want %q/%q", s1, b, k, b1, k1)
			}
		}
		// The file of one key is never a directory of another, even ignoring case.
		l1, l2 := strings.ToLower(s1), strings.ToLower(s2)
		if strings.HasPrefix(l2, l1+"/") || strings.HasPrefix(l1, l2+"/") {
			t.Fatalf("%q and %q: one is inside the other", s1, s2)
		}
	})
}
