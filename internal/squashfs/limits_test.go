package squashfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestLimits feeds tar streams at and past each limit of squashfs 4.0 and
// Linux through AddTar and Close. At a limit the image is made and
// unsquashfs lists the entry as given; past it the writer refuses the entry
// with ErrLimit, naming it, where mksquashfs and tar2sqfs write an image
// that unsquashfs refuses (65536 ids, an empty symlink) or that holds
// another value than the layer's (a uid of 2^32 as 0, a device 4096:0 as
// 0:0).
func TestLimits(t *testing.T) {
	testenv.Need(t, "unsquashfs")
	reg := func(name string, uid, gid int) testEntry {
		return testEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Uid: uid, Gid: gid}}
	}
	link := func(name, target string) testEntry {
		return testEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
	}
	dev := func(name string, major, minor int64) testEntry {
		return testEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o600, Devmajor: major, Devminor: minor}}
	}
	// ids returns files owned by n distinct uids and gids, the root's 0 among them.
	ids := func(n int) []testEntry {
		var es []testEntry
		for i := range n / 2 {
			es = append(es, reg(fmt.Sprintf("f%05d", i), 2*i, 2*i+1))
		}
		if n%2 == 1 {
			es = append(es, reg("odd", n-1, 0))
		}
		return es
	}
	deep := func(n int) string { return strings.Repeat("d/", (n-1)/2) + strings.Repeat("f", 2-n%2) } // n bytes
	long := strings.Repeat("n", MaxNameLen)
	tests := []struct {
		name    string
		entries []testEntry
		want    string // a line of the listing (mode owner size name…) when the image is made
		wantErr string // else: the error names this
	}{
		{"uid 2^32-2", []testEntry{reg("a", 1<<32-2, 1<<32-2)}, "-rw-r--r-- 4294967294/4294967294 0 R/a", ""},
		{"uid 2^32-1", []testEntry{reg("a", 1<<32-1, 0)}, "", `"a": owner 4294967295:0`},
		{"uid 2^32", []testEntry{reg("a", 1<<32, 0)}, "", `"a": owner 4294967296:0`},
		{"gid 2^63-1", []testEntry{reg("a", 0, 1<<63-1)}, "", `"a": owner 0:9223372036854775807`},
		{"negative gid", []testEntry{reg("a", 0, -1)}, "", `"a": owner 0:-1`},
		{"negative uid, GNU base-256", []testEntry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "a", Uid: -5, Format: tar.FormatGNU}}}, "", `"a": owner -5:0`},
		{"65535 ids", ids(MaxIDs), "-rw-r--r-- 65534/0 0 R/odd", ""},
		{"65536 ids", ids(MaxIDs + 1), "", "/f32767: more than 65535 distinct uids and gids"},
		{"name of 255 bytes", []testEntry{reg("d/"+long, 0, 0)}, "-rw-r--r-- 0/0 0 R/d/" + long, ""},
		{"name of 256 bytes", []testEntry{reg("d/"+long+"x", 0, 0)}, "", "of 256 bytes, longer than 255"},
		{"directory name of 256 bytes", []testEntry{reg(long+"x/f", 0, 0)}, "", "of 256 bytes, longer than 255"},
		{"hard link name of 256 bytes", []testEntry{reg("a", 0, 0), {hdr: tar.Header{Typeflag: tar.TypeLink, Name: long + "x", Linkname: "a"}}}, "", "of 256 bytes, longer than 255"},
		{"path of 4094 bytes", []testEntry{reg(deep(MaxPathLen), 0, 0)}, "-rw-r--r-- 0/0 0 R/" + deep(MaxPathLen), ""},
		{"path of 4095 bytes", []testEntry{reg(deep(MaxPathLen+1), 0, 0)}, "", "path of 4095 bytes, longer than 4094"},
		{"path of 4096 bytes cleaned to 1", []testEntry{reg(strings.Repeat("./", 2047)+"ab", 0, 0)}, "-rw-r--r-- 0/0 0 R/ab", ""},
		{"path of 512 KiB", []testEntry{reg(deep(1<<19-1), 0, 0)}, "", "path of 524287 bytes"},
		{"symlink target of 4095 bytes", []testEntry{link("l", deep(MaxSymlinkLen))}, "lrwxrwxrwx 0/0 4095 R/l -> " + deep(MaxSymlinkLen), ""},
		{"symlink target of 4096 bytes", []testEntry{link("l", deep(MaxSymlinkLen+1))}, "", `"l": symlink target of 4096 bytes`},
		{"symlink target of 512 KiB", []testEntry{link("l", deep(1<<19-1))}, "", `"l": symlink target of 524287 bytes`},
		{"empty symlink target", []testEntry{link("l", "")}, "", `"l": symlink with an empty target`},
		// unsquashfs -lln prints a minor above 255 wrongly; its extraction is right.
		{"device 4095:1048575", []testEntry{dev("c", MaxDevMajor, MaxDevMinor)}, "rdev 4095:1048575", ""},
		{"device major 4096", []testEntry{dev("c", MaxDevMajor+1, 0)}, "", `"c": device 4096:0`},
		{"device minor 2^20", []testEntry{dev("c", 1, MaxDevMinor+1)}, "", `"c": device 1:1048576`},
		{"negative device, GNU base-256", []testEntry{{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "b", Devmajor: -1, Format: tar.FormatGNU}}}, "", `"b": device -1:0`},
		{"mode bits beyond 07777 dropped", []testEntry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "m", Mode: 0o777777}}}, "-rwsrwsrwt 0/0 0 R/m", ""},
		{"unknown types skipped", []testEntry{{hdr: tar.Header{Typeflag: '7', Name: "cont", Size: 3}, data: []byte("abc")},
			{hdr: tar.Header{Typeflag: 'Z', Name: "zed"}}, reg("after", 0, 0)}, "-rw-r--r-- 0/0 0 R/after", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, img := scratchWriter(t, Options{BlockSize: 4096, Workers: 1})
			err := w.AddTar(bytes.NewReader(tarOf(t, tc.entries)))
			if err == nil {
				err = w.Close()
			} else {
				w.Abort()
			}
			if tc.wantErr != "" {
				if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want ErrLimit naming %s", err, tc.wantErr)
				}
				if len(err.Error()) > 1000 {
					t.Errorf("error of %d bytes: %.200s…", len(err.Error()), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want, ok := strings.CutPrefix(tc.want, "rdev "); ok {
				if got := extractedRdev(t, img, "c"); got != want {
					t.Fatalf("unsquashfs extracts device %s, want %s", got, want)
				}
				return
			}
			if got := listing(t, img); !strings.Contains(got+"\n", tc.want+"\n") {
				t.Fatalf("unsquashfs does not list %q:\n%.2000s", tc.want, got)
			}
		})
	}
}

// TestSizeClaimed: a header may claim any size; the writer reads the blocks
// as they come and fails at the end of the stream, naming the entry,
// without allocating for the size claimed.
func TestSizeClaimed(t *testing.T) {
	for _, size := range []int64{5 << 30, 1 << 44, 1<<62 + 3} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: size, Mode: 0o644, Format: tar.FormatPAX}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(bytes.Repeat([]byte("x"), 3*4096+5)); err != nil {
				t.Fatal(err)
			}
			w, _ := scratchWriter(t, Options{BlockSize: 4096, Workers: 1})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			err := w.AddTar(&buf)
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), `"huge"`) || !strings.Contains(err.Error(), "unexpected EOF") {
				t.Fatalf("AddTar of a header claiming %d bytes over 12 KiB: %v, want an unexpected EOF naming the entry", size, err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB for a header claiming %d bytes", alloc>>20, size)
			}
		})
	}
}

// TestTableLimits: the 32-bit offsets and sizes of the metadata tables (an
// inode's place in the inode table, a listing's in the directory table, a
// listing's size) are checked at Close, naming the directory; max32 is
// lowered so that small trees reach them. With the real limit the same trees
// make images.
func TestTableLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	randName := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		return string(b)
	}
	tests := []struct {
		name    string
		limit   uint64
		tree    func(w *Writer) error
		wantErr string
	}{
		{"inode table", 100, func(w *Writer) error {
			for i := range 400 {
				if err := addEmpty(w, fmt.Sprintf("f%03d", i)); err != nil {
					return err
				}
			}
			return nil
		}, "inode table larger than 4 GiB"},
		{"directory listing", 1000, func(w *Writer) error {
			for i := range 100 {
				if err := addEmpty(w, fmt.Sprintf("big/%03d-%s", i, randName(20))); err != nil {
					return err
				}
			}
			return nil
		}, "/big: directory listing larger than 4 GiB (100 names)"},
		{"directory table", 1000, func(w *Writer) error {
			for i := range 40 {
				if err := addEmpty(w, fmt.Sprintf("d%02d/%s", i, randName(MaxNameLen))); err != nil {
					return err
				}
			}
			return nil
		}, "directory table larger than 4 GiB"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []uint64{tc.limit, max32} {
				defer func(old uint64) { max32 = old }(max32)
				max32 = limit
				w, _ := scratchWriter(t, Options{BlockSize: 4096, Workers: 1})
				if err := tc.tree(w); err != nil {
					t.Fatal(err)
				}
				err := w.Close()
				if limit == tc.limit && (!errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Fatalf("Close with a limit of %d: %v, want ErrLimit: %s", limit, err, tc.wantErr)
				}
				if limit != tc.limit && err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
		})
	}
}

func addEmpty(w *Writer, name string) error {
	d, err := w.Data(strings.NewReader(""), 0)
	if err != nil {
		return err
	}
	return w.Add(name, Entry{Type: tar.TypeReg, Mode: 0o644, Data: d})
}

// extractedRdev extracts img as root and returns the major:minor of the
// device at name.
func extractedRdev(t *testing.T, img, name string) string {
	if os.Geteuid() != 0 {
		t.Skip("extracting a device needs root")
	}
	dir := filepath.Join(t.TempDir(), "x")
	testenv.Run(t, "unsquashfs", "-n", "-no-xattrs", "-d", dir, img)
	fi, err := os.Lstat(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	rdev := fi.Sys().(*syscall.Stat_t).Rdev
	// glibc's gnu_dev_major and gnu_dev_minor
	major := (rdev>>8)&0xfff | (rdev>>32)&^0xfff
	minor := rdev&0xff | (rdev>>12)&^0xff
	return fmt.Sprintf("%d:%d", major, minor)
}

// TestAddLimits: what a tar stream cannot carry but a caller of Add can (a
// NUL byte in a name or a target, an empty name for a file) is refused too.
func TestAddLimits(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		e          Entry
		wantErr    string
		limit      bool
	}{
		{"NUL in a name", "a\x00b", Entry{Type: tar.TypeDir}, "a NUL byte in the path", true},
		{"NUL in a directory's name", "d\x00/f", Entry{Type: tar.TypeFifo}, "a NUL byte in the path", true},
		{"NUL in a symlink target", "l", Entry{Type: tar.TypeSymlink, Target: "a\x00b"}, "a NUL byte in the symlink target", true},
		{"a file at the root's empty name", "", Entry{Type: tar.TypeFifo}, "the root must be a directory", false},
		{"a file at a name cleaned to the root", "a/../..", Entry{Type: tar.TypeSymlink, Target: "x"}, "the root must be a directory", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := scratchWriter(t, Options{Workers: 1})
			err := w.Add(tc.path, tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrLimit) != tc.limit {
				t.Fatalf("Add(%q): %v, want %q (ErrLimit %v)", tc.path, err, tc.wantErr, tc.limit)
			}
		})
	}
}
