package squashfs

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// FuzzAddTar feeds arbitrary tar streams to the writer: whatever the input,
// it must not panic or hang, and a stream it takes must close into an image.
// unsquashfs lists the image of every seed; while fuzzing only with
// SCV_FUZZ_UNSQUASHFS=1 (it is slow).
func FuzzAddTar(f *testing.F) {
	// Small seeds: the fuzzer minimizes every new input it keeps, and each exec of a
	// large one costs as much as its bytes.
	f.Add(tarOf(f, sampleTree(f, 512)[:40]))
	f.Add(tarOf(f, []testEntry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "blocks", Size: 2*4096 + 17}, data: bytes.Repeat([]byte("b"), 2*4096+17)}}))
	f.Add(tarOf(f, []testEntry{
		{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "a", Linkname: "missing"}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "../../x", Size: 1}, data: []byte("x")},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "x/y", Size: 1}, data: []byte("y")},
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "x/y/z"}},
		{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "."}},
	}))
	f.Add([]byte("not a tar"))
	f.Add(testenv.SparseTar("big", 1<<40)) // refused, not packed as 1 TiB of zeros
	list := os.Getenv("SCV_FUZZ_UNSQUASHFS") == "1" || !fuzzing()
	if list {
		testenv.Need(f, "unsquashfs")
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		p := filepath.Join(t.TempDir(), "f.sqfs")
		out, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		w, err := NewWriter(out, Options{BlockSize: 4096, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTar(bytes.NewReader(stream)); err != nil {
			w.Abort()
			return
		}
		if err := w.Close(); err != nil {
			t.Fatalf("close after a stream it took: %v", err)
		}
		if list {
			testenv.Run(t, "unsquashfs", "-n", "-lln", p)
		}
	})
}

// fuzzing reports whether the test binary runs the fuzzer (-test.fuzz).
func fuzzing() bool {
	for _, a := range os.Args {
		if strings.HasPrefix(a, "-test.fuzz=") {
			return true
		}
	}
	return false
}
