package convert

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func flattenTest(t *testing.T, img v1.Image) (sandbox, error) {
	t.Helper()
	s := newSandbox(t)
	r, err := newRootFS(s.root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = flattenImage(context.Background(), img, r, testLogger(t))
	assertStreamAgrees(t, img, s.root, err)
	return s, err
}

func wantFile(t *testing.T, root, rel, body string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Errorf("want file /%s: %v", rel, err)
		return
	}
	if string(b) != body {
		t.Errorf("/%s = %q, want %q", rel, b, body)
	}
}

func wantAbsent(t *testing.T, root, rel string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, rel)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/%s should not exist (err=%v)", rel, err)
	}
}

func wantMode(t *testing.T, root, rel string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, rel))
	if err != nil {
		t.Errorf("/%s: %v", rel, err)
		return
	}
	got := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if got != mode {
		t.Errorf("/%s mode = %v, want %v", rel, got, mode)
	}
}

func TestFlatten(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]ent
		root   bool // needs root (ownership, devices)
		check  func(t *testing.T, root string)
	}{
		{
			name: "files and directories of all layers are merged",
			layers: [][]ent{
				{dir("etc", 0o755), file("etc/a", "a1", 0o644), file("etc/b", "b1", 0o644)},
				{file("etc/a", "a2", 0o644), file("usr/bin/tool", "#!/bin/sh\n", 0o755)},
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, "etc/a", "a2")
				wantFile(t, root, "etc/b", "b1")
				wantFile(t, root, "usr/bin/tool", "#!/bin/sh\n")
				wantMode(t, root, "usr", 0o755) // implicit parents
			},
		},
		{
			name: "file whiteout removes a file of a lower layer",
			layers: [][]ent{
				{file("etc/a", "a", 0o644), file("etc/b", "b", 0o644)},
				{whiteout("etc/.wh.a")},
			},
			check: func(t *testing.T, root string) {
				wantAbsent(t, root, "etc/a")
				wantAbsent(t, root, "etc/.wh.a")
				wantFile(t, root, "etc/b", "b")
			},
		},
		{
			name: "file whiteout removes a whole directory",
			layers: [][]ent{
				{file("opt/x/y/z", "z", 0o644)},
				{whiteout("opt/.wh.x")},
			},
			check: func(t *testing.T, root string) {
				wantAbsent(t, root, "opt/x")
				wantMode(t, root, "opt", 0o755)
			},
		},
		{
			name: "opaque directory hides lower content and keeps its own",
			layers: [][]ent{
				{file("data/old1", "o", 0o644), file("data/sub/old2", "o", 0o644), file("keep/k", "k", 0o644)},
				{dir("data", 0o750), file("data/new", "n", 0o644), whiteout("data/.wh..wh..opq"), file("data/sub2/n2", "n2", 0o644)},
			},
			check: func(t *testing.T, root string) {
				wantAbsent(t, root, "data/old1")
				wantAbsent(t, root, "data/sub")
				wantAbsent(t, root, "data/.wh..wh..opq")
				wantFile(t, root, "data/new", "n")
				wantFile(t, root, "data/sub2/n2", "n2")
				wantFile(t, root, "keep/k", "k")
				wantMode(t, root, "data", 0o750)
			},
		},
		{
			name: "opaque directory keeps this layer's files in an older subdirectory",
			layers: [][]ent{
				{file("d/sub/old", "o", 0o644)},
				{file("d/sub/new", "n", 0o644), whiteout("d/.wh..wh..opq")},
			},
			check: func(t *testing.T, root string) {
				wantAbsent(t, root, "d/sub/old")
				wantFile(t, root, "d/sub/new", "n")
			},
		},
		{
			name: "hard links share the inode",
			layers: [][]ent{
				{file("bin/busybox", "BB", 0o755), hardlink("bin/sh", "bin/busybox"), hardlink("/bin/ls", "/bin/busybox")},
			},
			check: func(t *testing.T, root string) {
				a, _ := os.Stat(filepath.Join(root, "bin/busybox"))
				for _, l := range []string{"bin/sh", "bin/ls"} {
					b, err := os.Stat(filepath.Join(root, l))
					if err != nil || !os.SameFile(a, b) {
						t.Errorf("/%s is not a hard link of /bin/busybox (err=%v)", l, err)
					}
				}
				if n := a.Sys().(*syscall.Stat_t).Nlink; n != 3 {
					t.Errorf("nlink = %d, want 3", n)
				}
			},
		},
		{
			name: "hard link to a file of a lower layer",
			layers: [][]ent{
				{file("lib/libx.so.1", "ELF", 0o644)},
				{hardlink("lib/libx.so", "lib/libx.so.1")},
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, "lib/libx.so", "ELF")
			},
		},
		{
			name: "symlinks are stored as written",
			layers: [][]ent{
				{file("usr/lib/a", "a", 0o644), symlink("lib", "usr/lib"), symlink("abs", "/usr/lib/a"), symlink("dangling", "/nowhere")},
			},
			check: func(t *testing.T, root string) {
				for l, want := range map[string]string{"lib": "usr/lib", "abs": "/usr/lib/a", "dangling": "/nowhere"} {
					got, err := os.Readlink(filepath.Join(root, l))
					if err != nil || got != want {
						t.Errorf("readlink /%s = %q, %v; want %q", l, got, err, want)
					}
				}
			},
		},
		{
			name: "a file replaces a lower directory and a directory a lower file",
			layers: [][]ent{
				{file("x/inner", "i", 0o644), file("y", "y", 0o644)},
				{file("x", "now a file", 0o644), dir("y", 0o755), file("y/now", "dir", 0o644)},
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, "x", "now a file")
				wantFile(t, root, "y/now", "dir")
			},
		},
		{
			name: "writing over a hard link does not change the other name",
			layers: [][]ent{
				{file("a", "shared", 0o644), hardlink("b", "a")},
				{file("b", "own", 0o644)},
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, "a", "shared")
				wantFile(t, root, "b", "own")
			},
		},
		{
			name: "modes are kept, read-only directories included",
			layers: [][]ent{
				{dir("ro", 0o555), file("ro/f", "f", 0o400), file("suid", "s", 0o4755), dir("tmp", 0o1777), file("private", "p", 0o600)},
				{file("ro/later", "l", 0o644)},
			},
			check: func(t *testing.T, root string) {
				if isRoot() {
					wantMode(t, root, "ro", 0o555)
				} else {
					// Without root the owner keeps rwx on disk; the squashfs
					// gets 0555 from the pseudo file (TestConvertUnprivileged).
					wantMode(t, root, "ro", 0o755)
				}
				wantFile(t, root, "ro/later", "l")
				wantMode(t, root, "tmp", 0o777|fs.ModeSticky)
				wantMode(t, root, "private", 0o600)
				if isRoot() {
					wantMode(t, root, "ro/f", 0o400)
					wantMode(t, root, "suid", 0o755|fs.ModeSetuid)
				}
			},
		},
		{
			name: "owners are kept",
			root: true,
			layers: [][]ent{
				{owned(dir("home/u", 0o700), 1000, 1000), owned(file("home/u/f", "f", 0o644), 1000, 100), owned(symlink("home/u/l", "f"), 1000, 1000)},
			},
			check: func(t *testing.T, root string) {
				for rel, want := range map[string][2]uint32{"home/u": {1000, 1000}, "home/u/f": {1000, 100}, "home/u/l": {1000, 1000}} {
					fi, err := os.Lstat(filepath.Join(root, rel))
					if err != nil {
						t.Fatal(err)
					}
					st := fi.Sys().(*syscall.Stat_t)
					if st.Uid != want[0] || st.Gid != want[1] {
						t.Errorf("/%s owner = %d:%d, want %d:%d", rel, st.Uid, st.Gid, want[0], want[1])
					}
				}
			},
		},
		{
			name:   "device nodes are made when root",
			root:   true,
			layers: [][]ent{{chardev("dev/null", 1)}},
			check: func(t *testing.T, root string) {
				fi, err := os.Lstat(filepath.Join(root, "dev/null"))
				if err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
					t.Errorf("/dev/null is not a character device: %v %v", fi, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !isRoot() {
				t.Skip("needs root: ownership and device nodes are kept only by a root conversion")
			}
			s, err := flattenTest(t, imageOf(t, v1.Config{}, tt.layers...))
			if err != nil {
				t.Fatalf("flatten: %v", err)
			}
			tt.check(t, s.root)
			s.assertConfined(t)
		})
	}
}
