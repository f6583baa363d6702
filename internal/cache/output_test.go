package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckOutput(t *testing.T) {
	c := Open(t.TempDir())
	d, sifPath := commitTest(t, c, "faces")
	hex, _ := ParseDigest(d)
	if err := c.SetRef("faces", d); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	linkToSIFDir := filepath.Join(outside, "sifs")
	if err := os.Symlink(c.sifDir(), linkToSIFDir); err != nil {
		t.Fatal(err)
	}
	linkToSIF := filepath.Join(outside, "faces.sif")
	if err := os.Symlink(sifPath, linkToSIF); err != nil {
		t.Fatal(err)
	}
	hardLink := filepath.Join(c.Dir, "..", filepath.Base(c.Dir)+"-hardlink.sif")
	if err := os.Link(sifPath, hardLink); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(hardLink) })
	rel, err := filepath.Rel(mustGetwd(t), c.metaPath(hex))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		path   string
		inside bool
	}{
		{"the cached SIF", sifPath, true},
		{"its metadata, relative", rel, true},
		{"a ref", filepath.Join(c.refsDir(), "faces"), true},
		{"a new file in tmp", filepath.Join(c.tmpDir(), "new.tar"), true},
		{"the cache root", filepath.Join(c.Dir, "bundle.tar"), true},
		{"through .. back into the cache", filepath.Join(c.sifDir(), "..", "..", "bundle.tar"), true},
		{"a directory symlinked into the cache", filepath.Join(linkToSIFDir, "x.tar"), true},
		{"a symlink to the SIF", linkToSIF, true},
		{"a hard link of the SIF outside", hardLink, true},
		{"a new file outside", filepath.Join(outside, "bundle.tar"), false},
		{"a sibling whose name starts like the cache", c.Dir + "-bundle.tar", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.CheckOutput(tt.path)
			if tt.inside != errors.Is(err, ErrInsideCache) {
				t.Fatalf("CheckOutput(%s) = %v; inside = %v", tt.path, err, tt.inside)
			}
		})
	}
	if err := Open(filepath.Join(outside, "absent")).CheckOutput(filepath.Join(outside, "absent", "x")); err != nil {
		t.Errorf("a cache that does not exist: %v", err)
	}
	// Nothing was written by the checks, and the entry is sound.
	var buf bytes.Buffer
	if err := c.Export(context.Background(), &buf, nil); err != nil {
		t.Fatal(err)
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// TestCheckOutputFile: standard output redirected to a file of the cache is refused; a
// file outside and a pipe pass.
func TestCheckOutputFile(t *testing.T) {
	c := Open(t.TempDir())
	_, sifPath := commitTest(t, c, "faces")
	open := func(p string, flag int) *os.File {
		f, err := os.OpenFile(p, flag, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	for _, tt := range []struct {
		name   string
		f      *os.File
		inside bool
	}{
		{"the cached SIF", open(sifPath, os.O_RDONLY), true},
		{"a new file in the cache root", open(filepath.Join(c.Dir, "out.tar"), os.O_CREATE|os.O_WRONLY), true},
		{"a file outside", open(filepath.Join(t.TempDir(), "out.tar"), os.O_CREATE|os.O_WRONLY), false},
		{"a pipe", pw, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.CheckOutputFile(tt.f); tt.inside != errors.Is(err, ErrInsideCache) {
				t.Fatalf("CheckOutputFile = %v; inside = %v", err, tt.inside)
			}
		})
	}
}

// TestExportTo: a bundle written to a file outside the cache, or to a stdout that is
// not the cache's, imports again (ImportFrom); a path inside the cache is refused, writing nothing.
func TestExportTo(t *testing.T) {
	c := Open(t.TempDir())
	d, sifPath := commitTest(t, c, "faces")
	out := filepath.Join(t.TempDir(), "b.tar")
	n, err := c.ExportTo(t.Context(), out, nil, nil)
	if st, serr := os.Stat(out); err != nil || serr != nil || n != st.Size() || n == 0 {
		t.Fatalf("ExportTo(%s) = %d, %v (%v)", out, n, err, serr)
	}
	var stdout bytes.Buffer
	if n, err := c.ExportTo(t.Context(), "-", &stdout, []string{d}); err != nil || n != 0 || stdout.Len() == 0 {
		t.Fatalf("ExportTo(-) = %d, %v, %d bytes", n, err, stdout.Len())
	}
	// ImportFrom reads the file, or stdin for "-".
	for _, src := range []struct {
		path  string
		stdin io.Reader
	}{{out, nil}, {"-", &stdout}} {
		rep, err := Open(t.TempDir()).ImportFrom(t.Context(), src.path, src.stdin, ImportOptions{})
		if err != nil || len(rep.Imported) != 1 || rep.Imported[0] != d {
			t.Errorf("import of the export (%s): %+v, %v", src.path, rep, err)
		}
	}
	if _, err := c.ImportFrom(t.Context(), out+".none", nil, ImportOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("import of a missing file: %v", err)
	}
	if _, err := c.ExportTo(t.Context(), filepath.Join(c.Dir, "b.tar"), nil, nil); !errors.Is(err, ErrInsideCache) {
		t.Errorf("export into the cache: %v, want ErrInsideCache", err)
	}
	f, err := os.OpenFile(sifPath, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.ExportTo(t.Context(), "-", f, nil); !errors.Is(err, ErrInsideCache) {
		t.Errorf("export to a stdout that is the cached SIF: %v, want ErrInsideCache", err)
	}
}
