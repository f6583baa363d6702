package convert

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/scivision-hpc/scv-hpc/internal/squashfs"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// FuzzBuiltinLayers feeds two arbitrary layers to the builtin packer: the
// merge, the single pass that packs each file as it is read, naming the tree
// and closing the image. Whatever the layers, nothing may panic or hang, and
// what the merge takes the writer must take too: every limit of the image
// is checked on the layer's entry, where the error names it and its layer.
// unsquashfs lists the image of every seed; while fuzzing only with
// SCV_FUZZ_UNSQUASHFS=1 (it is slow).
func FuzzBuiltinLayers(f *testing.F) {
	long := strings.Repeat("n", squashfs.MaxNameLen)
	seeds := [][2][]ent{
		{{dir("etc", 0o755), file("etc/os-release", "ID=test\n", 0o644), hardlink("etc/h", "etc/os-release")},
			{whiteout("etc/.wh.os-release"), symlink("l", "/etc"), file("l/x", "x", 0o644)}},
		{{owned(file("a", "", 0o644), 1<<32-2, 7), file("etc/"+long, "x", 0o644)},
			{symlink("s", deepName(300)), file("s/f", "f", 0o600), {name: "c", typ: '3', mode: 0o600, major: squashfs.MaxDevMajor, minor: squashfs.MaxDevMinor}}},
		{{owned(file("a", "", 0o644), 1<<32-1, 0)}, {symlink("e", "")}},
		{{file("d/a", "x", 0o644), hardlink("b", "d/a")}, {whiteout("d/.wh..wh..opq"), file("d", "now a file", 0o644)}},
	}
	for _, s := range seeds {
		f.Add(tarOf(f, s[0]), tarOf(f, s[1]))
	}
	f.Add([]byte("not a tar"), []byte{})
	list := os.Getenv("SCV_FUZZ_UNSQUASHFS") == "1" || !fuzzing()
	if list {
		testenv.Need(f, "unsquashfs")
	}
	f.Fuzz(func(t *testing.T, a, b []byte) {
		layers := []v1.Layer{rawLayer(t, a), rawLayer(t, b)}
		p := filepath.Join(t.TempDir(), "f.sqfs")
		out, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		sw, err := squashfs.NewWriter(out, squashfs.Options{BlockSize: 4096, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer sw.Abort()
		m, data, err := builtinOnePass(t.Context(), sw, layers, Options{})
		if err != nil {
			return
		}
		if err := nameTree(t.Context(), sw, m.t, data); err != nil {
			t.Fatalf("the merge took the layers, the writer refused their tree: %v", err)
		}
		if err := sw.Close(); err != nil {
			t.Fatalf("close after layers the merge took: %v", err)
		}
		if list {
			testenv.Run(t, "unsquashfs", "-n", "-lln", p)
		}
	})
}

// rawLayer is a layer of the uncompressed stream b.
func rawLayer(t *testing.T, b []byte) v1.Layer {
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
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
