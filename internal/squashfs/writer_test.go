package squashfs

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// testEntry is one entry of a generated tar stream.
type testEntry struct {
	hdr  tar.Header
	data []byte
}

// sampleTree is a tar stream that exercises what the writer must get right:
// files of every size class around the block size (empty, one byte, a block
// less one, a block, a block and a byte, several blocks and a tail), random
// (incompressible) and repetitive content, hard links, symlinks, devices, a
// FIFO, set-id and sticky modes, many owners, deep paths, names of 255 bytes,
// a directory of 3000 entries (a listing of many metadata blocks, more than
// 256 entries a run) and one whose listing needs the extended inode, and
// parents that appear only implicitly.
func sampleTree(t testing.TB, bs int) []testEntry {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		return bytes.Repeat([]byte("squashfs writer test line\n"), n/26+1)[:n]
	}
	var es []testEntry
	dir := func(name string, mode int64, uid, gid int) {
		es = append(es, testEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid}})
	}
	file := func(name string, mode int64, uid, gid int, data []byte) {
		es = append(es, testEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid, Size: int64(len(data))}, data: data})
	}
	dir("etc", 0o755, 0, 0)
	for i, n := range []int{0, 1, bs - 1, bs, bs + 1, 3*bs + 17, 5 * bs} {
		file(fmt.Sprintf("etc/text-%d", i), 0o644, 0, 0, text(n))
		file(fmt.Sprintf("bin/random-%d", i), 0o755, 1000, 100, random(n))
	}
	file("usr/local/share/deep/er/still/file.txt", 0o600, 65534, 65534, text(300))
	file("usr/bin/sudo", 0o4755, 0, 0, random(5000))
	file("usr/bin/wall", 0o2755, 0, 5, random(700))
	dir("tmp", 0o1777, 0, 0)
	dir("home/user", 0o700, 1234567, 7654321)
	file("home/user/"+strings.Repeat("n", 255), 0o644, 1234567, 7654321, text(10))
	es = append(es,
		testEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "bin/hard-to-random", Linkname: "bin/random-5"}},
		testEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "etc/hard-to-text", Linkname: "etc/text-1"}},
		testEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: "etc/hard-to-text-2", Linkname: "etc/text-1"}},
		testEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "lib", Linkname: "usr/lib", Mode: 0o777}},
		testEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "etc/long-link", Linkname: strings.Repeat("x/", 1000) + "end", Mode: 0o777}},
		testEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		testEntry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/big", Mode: 0o660, Gid: 6, Devmajor: 259, Devminor: 70000}},
		testEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o620, Uid: 3}},
	)
	for i := range 3000 {
		file(fmt.Sprintf("many/entry-%05d-%s", i, strings.Repeat("p", i%40)), 0o644, i%7, i%3, text(i%300))
	}
	for i := range 300 {
		dir(fmt.Sprintf("wide/%s-%03d", strings.Repeat("d", 230), i), 0o755, 0, 0)
	}
	es = append(es, testEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o751, Uid: 0, Gid: 0}})
	return es
}

func tarOf(t testing.TB, es []testEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := e.hdr
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeImage(t testing.TB, path string, tarStream []byte, o Options) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddTar(bytes.NewReader(tarStream)); err != nil {
		w.Abort()
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// listing is unsquashfs -lln of img with the image's own name cut off and the
// lines sorted: mode, numeric owner, size (or device numbers; not for
// directories), name, link target, for every entry.
func listing(t testing.TB, img string) string {
	out := testenv.Run(t, "unsquashfs", "-n", "-lln", "-d", "R", img)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasPrefix(f[5], "R") {
			continue
		}
		// drop the date and time (fields 3 and 4): they are all 1970 anyway;
		// a directory's size is its listing's, which depends on how the
		// inodes fall into metadata blocks: not compared
		if strings.HasPrefix(f[0], "d") {
			f[2] = "-"
		}
		lines = append(lines, strings.Join(append(f[:3], f[5:]...), " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestSameTreeAsTar2sqfs packs the sample tree with the writer and with
// tar2sqfs (squashfs-tools-ng) and compares what unsquashfs, an independent
// reader, lists and extracts from each: every name, mode, owner, size, link
// target and device, and every file's bytes.
func TestSameTreeAsTar2sqfs(t *testing.T) {
	testenv.Need(t, "unsquashfs", "tar2sqfs")
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"gzip-1 128k", Options{}},
		{"gzip-9 4k 1 worker", Options{Level: 9, BlockSize: 4096, Workers: 1}},
		{"zstd-3 1m", Options{Compression: "zstd", BlockSize: 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := tc.o.BlockSize
			if bs == 0 {
				bs = DefaultBlockSize
			}
			stream := tarOf(t, sampleTree(t, bs))
			dir := t.TempDir()
			ours, ref := filepath.Join(dir, "ours.sqfs"), filepath.Join(dir, "ref.sqfs")
			writeImage(t, ours, stream, tc.o)
			cmd := exec.Command("tar2sqfs", "--quiet", "--force", "--no-xattr", "--no-skip", "--defaults", "mtime=0",
				"--block-size", fmt.Sprint(bs), ref)
			cmd.Stdin = bytes.NewReader(stream)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tar2sqfs: %v\n%s", err, out)
			}
			got, want := listing(t, ours), listing(t, ref)
			if got != want {
				t.Fatalf("unsquashfs lists a different tree:\n%s", firstDiff(got, want))
			}
			if strings.Count(got, "\n") < 3300 {
				t.Fatalf("listing has only %d lines", strings.Count(got, "\n"))
			}
			if os.Geteuid() == 0 {
				a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
				testenv.Run(t, "unsquashfs", "-n", "-no-xattrs", "-d", a, ours)
				testenv.Run(t, "unsquashfs", "-n", "-no-xattrs", "-d", b, ref)
				if ga, gb := treeSum(t, a), treeSum(t, b); ga != gb {
					t.Fatalf("extracted trees differ:\n%s", firstDiff(ga, gb))
				}
			}
		})
	}
}

// treeSum describes every entry under root: name, mode, owner, link count,
// and a hash of a file's bytes, a link's target or a device's number.
func treeSum(t testing.TB, root string) string {
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		what := ""
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			what = fmt.Sprintf("%x", sha256.Sum256(b))
		case fi.Mode()&fs.ModeSymlink != 0:
			what, _ = os.Readlink(p)
		case fi.Mode()&fs.ModeDevice != 0:
			what = fmt.Sprint(st.Rdev)
		}
		nlink := st.Nlink
		if fi.IsDir() {
			nlink = 0 // unsquashfs does not keep directory link counts
		}
		lines = append(lines, fmt.Sprintf("%s %v %d:%d %d %s", rel, fi.Mode(), st.Uid, st.Gid, nlink, what))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n got  %q\n want %q", i+1, x, y)
		}
	}
	return "(same lines)"
}

// TestAddTarRefusesSparse: a GNU sparse file, whose holes archive/tar would read as 1 TiB
// of zeros, is refused at its header, naming it, and nothing of the stream is packed.
func TestAddTarRefusesSparse(t *testing.T) {
	w, _ := scratchWriter(t, Options{Workers: 1})
	err := w.AddTar(bytes.NewReader(testenv.SparseTar("big", 1<<40)))
	if !errors.Is(err, tarsafe.ErrSparse) || !strings.Contains(err.Error(), `"big"`) {
		t.Fatalf("AddTar of a sparse file: %v, want tarsafe.ErrSparse naming it", err)
	}
}

// scratchWriter returns a Writer with options o into a file of the test's own, and
// the file's path; the file is closed and the writer aborted (a no-op after Close)
// when the test ends.
func scratchWriter(t *testing.T, o Options) (*Writer, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scratch.sqfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	w, err := NewWriter(f, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Abort)
	return w, p
}
