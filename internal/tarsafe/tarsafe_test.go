package tarsafe_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// pax returns a tar stream of one entry named "f", of size bytes of content, after a
// PAX header holding the records kv (key, value, key, value…, in that order).
func pax(size int64, kv ...string) []byte {
	body := ""
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		n := len(k) + len(v) + 3
		for s := fmt.Sprintf("%d %s=%s\n", n, k, v); len(s) != n; s = fmt.Sprintf("%d %s=%s\n", n, k, v) {
			n = len(s)
		}
		body += fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	out := testenv.TarBlock("PaxHeaders/f", 'x', int64(len(body)))
	out = append(out, pad([]byte(body))...)
	out = append(out, testenv.TarBlock("f", '0', size)...)
	out = append(out, pad(bytes.Repeat([]byte("\n"), int(size)))...)
	return append(out, make([]byte, 1024)...)
}

func pad(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// oldGNU returns a tar stream of one old-format GNU sparse entry (type 'S'), all hole,
// of realsize bytes.
func oldGNU(realsize int64) []byte {
	b := testenv.TarBlock("old", 'S', 0)
	copy(b[257:], "ustar  \x00") // GNU magic
	copy(b[483:], fmt.Sprintf("%011o\x00", realsize))
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return append(b, make([]byte, 1024)...)
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		sparse bool
	}{
		{"PAX 1.0, expanded by archive/tar", testenv.SparseTar("big", 1<<40), true},
		{"PAX 0.1", pax(1, "GNU.sparse.numblocks", "1", "GNU.sparse.map", "0,1", "GNU.sparse.size", "1000000000000"), true},
		{"PAX 0.0", pax(1, "GNU.sparse.numblocks", "1", "GNU.sparse.offset", "0", "GNU.sparse.numbytes", "1", "GNU.sparse.size", "1000000000000"), true},
		{"unknown PAX version, not expanded", pax(1, "GNU.sparse.major", "9", "GNU.sparse.minor", "9"), true},
		{"old GNU type S", oldGNU(8000000000), true},
		{"a regular file with other PAX records", pax(3, "SCHILY.xattr.user.a", "b", "path", "f"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := tar.NewReader(bytes.NewReader(tc.stream)).Next()
			if err != nil {
				t.Fatal(err)
			}
			err = tarsafe.Check(h)
			if got := errors.Is(err, tarsafe.ErrSparse); got != tc.sparse {
				t.Fatalf("Check(%q, type %c, size %d) = %v, want sparse %v", h.Name, h.Typeflag, h.Size, err, tc.sparse)
			}
			if tc.sparse && !strings.Contains(err.Error(), fmt.Sprintf("%q", h.Name)) {
				t.Errorf("error %q does not name the entry %q", err, h.Name)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct{ name, want string }{
		{"etc/passwd", `"etc/passwd"`},
		{"tab\there", `"tab\there"`},
		{long, `"` + long + `"`},
		{long + "b" + strings.Repeat("c", 1<<20), `"` + long + `"… (1048641 bytes)`},
	} {
		if got := tarsafe.Quote(tc.name); got != tc.want {
			t.Errorf("Quote(%.80q) = %.100s, want %s", tc.name, got, tc.want)
		}
	}
}
