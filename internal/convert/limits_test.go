package convert

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/squashfs"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// deepName is a path of n bytes: "d/d/…/f".
func deepName(n int) string { return strings.Repeat("d/", (n-1)/2) + strings.Repeat("f", 2-n%2) }

// TestLayerLimits feeds layers at and past the limits of squashfs and Linux
// (squashfs.Max*) through the merge that the builtin and tar2sqfs packers
// share. Past a limit the conversion fails with squashfs.ErrLimit, naming
// the entry and its layer, where tar2sqfs alone writes an image that holds
// another owner or device than the layer's, or that unsquashfs refuses; at
// the limit the image is made, siftool reads it and unsquashfs lists the
// entry.
func TestLayerLimits(t *testing.T) {
	testenv.Need(t, "tar2sqfs", "unsquashfs", "siftool")
	base := []ent{dir("etc", 0o755), file("etc/os-release", "ID=test\n", 0o644)}
	long := strings.Repeat("n", squashfs.MaxNameLen)
	tests := []struct {
		name  string
		layer []ent // the second layer, above base
		want  string
		// wantErr: the error names this entry of layer 2; else want is the
		// start of a line of the image's listing
		wantErr string
	}{
		{"uid 2^32-2", []ent{owned(file("a", "", 0o644), 1<<32-2, 1<<32-2)}, "-rw-r--r-- 4294967294/4294967294 0 a ", ""},
		{"gid 2^32-1", []ent{owned(file("a", "", 0o644), 0, 1<<32-1)}, "", `entry "a": owner 0:4294967295`},
		{"uid 2^32", []ent{owned(file("a", "", 0o644), 1<<32, 0)}, "", `entry "a": owner 4294967296:0`},
		{"negative gid", []ent{owned(dir("d", 0o755), 0, -2)}, "", `entry "d": owner 0:-2`},
		{"root owner 2^40", []ent{owned(dir("./", 0o755), 1<<40, 0)}, "", `entry "./": owner 1099511627776:0`},
		{"name of 255 bytes", []ent{file("etc/"+long, "x", 0o644)}, "-rw-r--r-- 0/0 1 etc/" + long + " ", ""},
		{"name of 256 bytes", []ent{file("etc/"+long+"x", "x", 0o644)}, "", "of 256 bytes, longer than 255"},
		{"path of 4094 bytes", []ent{file(deepName(squashfs.MaxPathLen), "x", 0o644)}, "-rw-r--r-- 0/0 1 " + deepName(squashfs.MaxPathLen) + " ", ""},
		{"path of 4095 bytes", []ent{file(deepName(squashfs.MaxPathLen+1), "x", 0o644)}, "", "path of 4095 bytes, longer than 4094"},
		{"path of 4095 bytes through a symlink", []ent{symlink("l", deepName(4000)), file("l/"+strings.Repeat("x", 94), "x", 0o644)},
			"", `"l/xxxxxxxx`},
		{"path of 4094 bytes through a symlink", []ent{symlink("l", deepName(4000)), file("l/"+strings.Repeat("x", 93), "x", 0o644)},
			"-rw-r--r-- 0/0 1 " + deepName(4000) + "/" + strings.Repeat("x", 93) + " ", ""},
		{"a symlink chain past 4095 bytes", []ent{symlink("l1", deepName(3001)), symlink("l2", "l1/"+deepName(3001)), file("l2/f", "x", 0o644)},
			"", `"l2/f": resolve "l2/": a path longer than 4094 bytes`},
		{"hard link to a name of 5000 bytes", []ent{hardlink("h", deepName(5000))}, "", "hard link target: path of 5000 bytes"},
		{"whiteout of a name of 256 bytes", []ent{whiteout("etc/.wh." + long + "x")}, "", "of 256 bytes, longer than 255"},
		{"symlink target of 4095 bytes", []ent{symlink("l", deepName(squashfs.MaxSymlinkLen))}, "lrwxrwxrwx 0/0 4095 l -> " + deepName(squashfs.MaxSymlinkLen), ""},
		{"symlink target of 4096 bytes", []ent{symlink("l", deepName(squashfs.MaxSymlinkLen+1))}, "", `entry "l": symlink target of 4096 bytes`},
		{"empty symlink target", []ent{symlink("l", "")}, "", `entry "l": symlink with an empty target`},
		{"device 4095:1048575", []ent{{name: "c", typ: '3', mode: 0o600, major: squashfs.MaxDevMajor, minor: squashfs.MaxDevMinor}}, "crw------- 0/0 ", ""},
		{"device major 4096", []ent{chardev("c", squashfs.MaxDevMajor+1)}, "", `entry "c": device 4096:0`},
		{"an empty symlink at the root's name, ignored", []ent{symlink("./", "")}, "-rw-r--r-- 0/0 8 etc/os-release ", ""},
		{"device minor 2^20", []ent{{name: "c", typ: '4', mode: 0o600, major: 8, minor: squashfs.MaxDevMinor + 1}}, "", `entry "c": device 8:1048576`},
	}
	for _, tc := range tests {
		for _, packer := range []string{PackerBuiltin, PackerTar2sqfs} {
			t.Run(tc.name+"/"+packer, func(t *testing.T) {
				img := imageOf(t, demoConfig, base, tc.layer)
				dst := filepath.Join(t.TempDir(), "out.sif")
				err := Convert(t.Context(), img, dst, demoProv, Options{Packer: packer, TmpDir: t.TempDir(), Log: testLogger(t)})
				if tc.wantErr != "" {
					if !errors.Is(err, squashfs.ErrLimit) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "layer 2 of 2 (sha256:") {
						t.Fatalf("got %v\nwant squashfs.ErrLimit naming layer 2 and %s", err, tc.wantErr)
					}
					if len(err.Error()) > 1000 {
						t.Errorf("error of %d bytes: %.300s…", len(err.Error()), err)
					}
					assertNoSIF(t, dst)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				testenv.Run(t, "siftool", "list", dst)
				if got := lsSIF(t, dst); !strings.Contains("\n"+got, "\n"+tc.want) {
					t.Fatalf("the image does not list %.200q:\n%.3000s", tc.want, got)
				}
			})
		}
	}
}

// TestLayerLimitsTreePath: the unpacking fallback refuses the same entries as the
// merge (squashfs.ErrLimit, naming the entry and its layer), before it writes them
// on the host. Paths near PATH_MAX are not among them: unpacked below a host
// directory, they are too long for the host first.
func TestLayerLimitsTreePath(t *testing.T) {
	testenv.Need(t, "mksquashfs")
	base := []ent{dir("etc", 0o755), file("etc/os-release", "ID=test\n", 0o644)}
	for _, tc := range []struct {
		name    string
		layer   []ent
		wantErr string
	}{
		{"uid 2^32", []ent{owned(file("a", "", 0o644), 1<<32, 0)}, `entry "a": owner 4294967296:0`},
		{"name of 256 bytes", []ent{file("etc/"+strings.Repeat("n", 256), "x", 0o644)}, "of 256 bytes, longer than 255"},
		{"hard link to a name of 5000 bytes", []ent{hardlink("h", deepName(5000))}, "hard link target: path of 5000 bytes"},
		{"whiteout of a name of 256 bytes", []ent{whiteout("etc/.wh." + strings.Repeat("n", 256))}, "of 256 bytes, longer than 255"},
		{"symlink target of 4096 bytes", []ent{symlink("l", deepName(squashfs.MaxSymlinkLen+1))}, `entry "l": symlink target of 4096 bytes`},
		{"device major 4096", []ent{chardev("c", squashfs.MaxDevMajor+1)}, `entry "c": device 4096:0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := imageOf(t, demoConfig, base, tc.layer)
			dst := filepath.Join(t.TempDir(), "out.sif")
			tmp := t.TempDir()
			err := Convert(t.Context(), img, dst, demoProv, Options{Packer: PackerTree, TmpDir: tmp, Log: testLogger(t)})
			if !errors.Is(err, squashfs.ErrLimit) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "layer 2 of 2 (sha256:") {
				t.Fatalf("got %.500v\nwant squashfs.ErrLimit naming layer 2 and %s", err, tc.wantErr)
			}
			assertNoSIF(t, dst)
			assertEmptyDir(t, tmp) // the unpacked tree is gone
		})
	}
}

// TestLayerTooManyOwners: 65536 distinct uids and gids do not fit the id
// table; the builtin packer fails naming the first entry past the limit
// (which layer put it there is not the point: the image as a whole has too
// many), where tar2sqfs writes an image that unsquashfs and the kernel refuse.
func TestLayerTooManyOwners(t *testing.T) {
	var ents []ent
	for i := range (squashfs.MaxIDs + 1) / 2 { // with 0, the owner of /.singularity.d
		ents = append(ents, owned(file(fmt.Sprintf("f%05d", i), "", 0o644), 2*i+1, 2*i+2))
	}
	img := imageOf(t, demoConfig, ents)
	dst := filepath.Join(t.TempDir(), "out.sif")
	err := Convert(t.Context(), img, dst, demoProv, Options{Packer: PackerBuiltin, TmpDir: t.TempDir(), Log: testLogger(t)})
	if !errors.Is(err, squashfs.ErrLimit) || !strings.Contains(err.Error(), "/f32767: more than 65535 distinct uids and gids") {
		t.Fatalf("got %v, want squashfs.ErrLimit naming /f32767", err)
	}
	assertNoSIF(t, dst)
}

// TestLayerSizeClaimed: a header may claim any size; the conversion reads
// what the layer holds and fails at its end, naming the entry and the layer,
// with one pass or two.
func TestLayerSizeClaimed(t *testing.T) {
	for _, twoPass := range []bool{false, true} {
		t.Run(fmt.Sprint("two passes ", twoPass), func(t *testing.T) {
			stream := tarOf(t, []ent{file("a", "a", 0o644), file("huge", strings.Repeat("h", 1<<20), 0o644)})
			// Claim 1 TiB in the PAX-less ustar header of "huge": its size field
			// is 12 octal digits.
			i := strings.Index(string(stream), "huge\x00")
			copy(stream[i+124:], fmt.Sprintf("%011o\x00", int64(1)<<33-1))
			sum := 0
			copy(stream[i+148:i+156], "        ")
			for _, c := range stream[i : i+512] {
				sum += int(c)
			}
			copy(stream[i+148:], fmt.Sprintf("%06o\x00 ", sum))
			img := imageOf(t, demoConfig, []ent{file("etc/os-release", "ID=test\n", 0o644)})
			img = appendRawLayer(t, img, stream)
			dst := filepath.Join(t.TempDir(), "out.sif")
			err := Convert(t.Context(), img, dst, demoProv, Options{Packer: PackerBuiltin, TwoPass: twoPass, TmpDir: t.TempDir(), Log: testLogger(t)})
			if err == nil || !strings.Contains(err.Error(), "layer 2 of 2 (sha256:") || !strings.Contains(err.Error(), "unexpected EOF") {
				t.Fatalf("got %v, want an unexpected EOF in layer 2", err)
			}
			assertNoSIF(t, dst)
		})
	}
}

// assertNoSIF fails if a failed conversion left dst, or anything, in its
// directory.
func assertNoSIF(t *testing.T, dst string) {
	t.Helper()
	assertEmptyDir(t, filepath.Dir(dst))
}

// appendRawLayer adds the uncompressed tar stream as a layer on top of img.
func appendRawLayer(t *testing.T, img v1.Image, stream []byte) v1.Image {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(stream)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// lsSIF is unsquashfs -lln of the SIF's squashfs, one line an entry: mode,
// owner, size (or device numbers, as unsquashfs prints them), path below the
// root (and " -> target"), followed by a space. Unlike listing it does not
// extract the image: a path of MaxPathLen bytes below a temporary directory
// is longer than a system call takes.
func lsSIF(t *testing.T, sifPath string) string {
	t.Helper()
	off, _, err := sif.PrimaryPartition(sifPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(testenv.Run(t, "unsquashfs", "-lln", "-o", fmt.Sprint(off), sifPath), "\n") {
		i := strings.Index(l, "squashfs-root")
		f := strings.Fields(l[:max(i, 0)])
		if i < 0 || len(f) < 5 {
			continue
		}
		name := strings.TrimPrefix(strings.TrimPrefix(l[i:], "squashfs-root"), "/")
		size := strings.Join(f[2:len(f)-2], "") // a device's "8, 1"; date and time dropped
		lines = append(lines, f[0]+" "+f[1]+" "+size+" "+name+" ")
	}
	return strings.Join(lines, "\n")
}

// BenchmarkMergeSymlinkChain is a layer's worst case for resolving names in
// the merged tree: each entry is made through 40 chained symlinks (the most
// a resolution follows) whose targets, of up to 4095 bytes, go down 2000
// directories and then up and down one 800 times each, about 66,000 steps
// an entry with the path near its 4094-byte limit. Reported per entry.
func BenchmarkMergeSymlinkChain(b *testing.B) {
	m := newMerger(zerolog.Nop())
	m.startLayer(0)
	apply := func(h *tar.Header) {
		if err := m.apply(h, 0); err != nil {
			b.Fatal(err)
		}
	}
	down := strings.Repeat("d/", 1999) + "d"
	apply(&tar.Header{Typeflag: tar.TypeDir, Name: down, Mode: 0o755})
	apply(&tar.Header{Typeflag: tar.TypeSymlink, Name: "l01", Linkname: down})
	updown := strings.Repeat("/x/..", 800)
	for k := 2; k <= maxSymlinks; k++ {
		apply(&tar.Header{Typeflag: tar.TypeSymlink, Name: fmt.Sprintf("l%02d", k), Linkname: fmt.Sprintf("/l%02d%s", k-1, updown)})
	}
	b.ResetTimer()
	for i := range b.N {
		apply(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("l%02d/f%d", maxSymlinks, i), Mode: 0o644})
	}
}
