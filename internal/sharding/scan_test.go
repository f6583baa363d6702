package sharding

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
)

// entry is one path of a test tree: a file with content, a symlink, a FIFO or a dir.
type entry struct {
	path, content, link string
	fifo, dir, locked   bool // locked: mode 000 after creation
}

func build(t *testing.T, root string, ents []entry) {
	t.Helper()
	for _, e := range ents {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case e.dir:
			err = os.MkdirAll(p, 0o755)
		case e.link != "":
			err = os.Symlink(e.link, p)
		case e.fifo:
			err = syscall.Mkfifo(p, 0o644)
		default:
			err = os.WriteFile(p, []byte(e.content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.locked {
			if err := os.Chmod(p, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(p, 0o755) })
		}
	}
}

type found struct {
	rel  string
	size int64
}

func TestScan(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.png"), []byte("xx"), 0o644)
	tests := []struct {
		name    string
		tree    []entry
		include []string
		want    []found
		skipped map[string]string // rel → substring of the reason
		asRoot  string            // if non-empty, the case is skipped as root with this reason
	}{
		{
			name: "default globs, nested, sorted, case-insensitive",
			tree: []entry{
				{path: "b/2.png", content: "22"}, {path: "a.JPG", content: "1"},
				{path: "b/1.TIFF", content: "333"}, {path: "a/z.webp", content: ""},
				{path: "notes.txt", content: "x"}, {path: "c/d/e/deep.npy", content: "4444"},
				{path: "a0.gif", content: "5"}, {path: "B.bmp", content: "66"},
			},
			want: []found{{"B.bmp", 2}, {"a/z.webp", 0}, {"a.JPG", 1}, {"a0.gif", 1},
				{"b/1.TIFF", 3}, {"b/2.png", 2}, {"c/d/e/deep.npy", 4}},
		},
		{
			name: "hidden files and dirs are left out silently",
			tree: []entry{{path: ".hid.png"}, {path: ".git/x.png"}, {path: "ok/.x.jpg"}, {path: "ok/y.jpg", content: "y"}},
			want: []found{{"ok/y.jpg", 1}},
		},
		{
			name:    "custom include globs",
			include: []string{"*.NPY", "img_??.png"},
			tree:    []entry{{path: "img_01.png"}, {path: "img_001.png"}, {path: "x.npy"}, {path: "x.jpg"}},
			want:    []found{{"img_01.png", 0}, {"x.npy", 0}},
		},
		{
			name: "symlinks in, out, broken, loops",
			tree: []entry{
				{path: "real/a.png", content: "abc"},
				{path: "in.png", link: "real/a.png"},
				{path: "out.png", link: filepath.Join(outside, "secret.png")},
				{path: "dotdot.png", link: strings.Repeat("../", 30) + strings.TrimPrefix(outside, "/") + "/secret.png"},
				{path: "broken.png", link: "nowhere.png"},
				{path: "loop1.png", link: "loop2.png"}, {path: "loop2.png", link: "loop1.png"},
				{path: "real/up.png", link: ".."},
				{path: "real/sub", link: ".."},                      // a directory link: reported, not followed
				{path: "real/x.txt", link: "a.png"},                 // a file link the globs do not match: ignored
				{path: "real/gone", link: "nowhere"},                // a broken link the globs do not match: ignored
				{path: "outdir", link: filepath.Dir(outside + "/")}, // a directory link out of the root: reported
			},
			want: []found{{"in.png", 3}, {"real/a.png", 3}},
			skipped: map[string]string{
				"out.png": "outside the data root", "dotdot.png": "", "broken.png": "broken symlink",
				"loop1.png": "loop", "loop2.png": "loop", "real/up.png": "directory",
				"real/sub/": "symlink to a directory, not followed", "outdir/": "symlink to a directory",
			},
		},
		{
			name:    "fifo and names that cannot be one line",
			tree:    []entry{{path: "pipe.png", fifo: true}, {path: "new\nline.png"}, {path: "dir\nx/a.png"}, {path: "bad\xff.png"}, {path: "ok.png"}},
			want:    []found{{"ok.png", 0}},
			skipped: map[string]string{"pipe.png": "fifo", "new\nline.png": "line break", "dir\nx/": "line break", "bad\xff.png": "UTF-8"},
		},
		{
			name:    "unreadable file and directory",
			tree:    []entry{{path: "locked.png", content: "x", locked: true}, {path: "closed/a.png"}, {path: "closed", dir: true, locked: true}, {path: "ok.png"}},
			want:    []found{{"ok.png", 0}},
			skipped: map[string]string{"locked.png": "not readable", "closed/": "cannot read directory"},
			asRoot:  "root reads every file whatever its mode; the FIFO case covers a file that cannot be read as an image",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.asRoot != "" && os.Geteuid() == 0 {
				t.Skip(tc.asRoot)
			}
			root := filepath.Join(t.TempDir(), "data")
			build(t, root, tc.tree)
			var got []found
			skipped := map[string]string{}
			st, err := Scan(context.Background(), root, ScanOptions{Include: tc.include, OnSkip: func(rel, reason string) {
				skipped[rel] = reason
			}}, func(rel string, size int64) error {
				got = append(got, found{rel, size})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("found\n %v\nwant\n %v", got, tc.want)
			}
			if len(skipped) != len(tc.skipped) || st.Skipped != int64(len(tc.skipped)) {
				t.Errorf("skipped %q (stats %d), want %q", skipped, st.Skipped, tc.skipped)
			}
			for rel, want := range tc.skipped {
				if r, ok := skipped[rel]; !ok || !strings.Contains(r, want) {
					t.Errorf("skip of %q: reason %q, want one containing %q", rel, r, want)
				}
			}
			var bytes int64
			for _, f := range tc.want {
				bytes += f.size
			}
			if st.Inputs != int64(len(tc.want)) || st.Bytes != bytes {
				t.Errorf("stats %+v, want %d inputs, %d bytes", st, len(tc.want), bytes)
			}
			paths := make([]string, len(got))
			for i, f := range got {
				paths[i] = f.rel
			}
			if !sort.SliceIsSorted(paths, func(i, j int) bool { return lessWalk(paths[i], paths[j]) }) {
				t.Errorf("not in walk order: %q", paths)
			}
		})
	}
}

// lessWalk is the order of a sorted depth-first walk: compare path components.
func lessWalk(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] != bs[i] {
			return as[i] < bs[i]
		}
	}
	return len(as) < len(bs)
}

func TestScanErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f.png")
	os.WriteFile(file, nil, 0o644)
	nop := func(string, int64) error { return nil }
	if _, err := Scan(context.Background(), filepath.Join(dir, "missing"), ScanOptions{}, nop); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing root: %v", err)
	}
	if _, err := Scan(context.Background(), file, ScanOptions{}, nop); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as root: %v", err)
	}
	for _, bad := range [][]string{{"[x"}, {"a/*.png"}, {" "}} {
		if _, err := Scan(context.Background(), dir, ScanOptions{Include: bad}, nop); !errors.Is(err, ErrBadInclude) {
			t.Errorf("include %q: %v", bad, err)
		}
	}
	stop := errors.New("stop")
	if _, err := Scan(context.Background(), dir, ScanOptions{}, func(string, int64) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error not returned: %v", err)
	}
}

func TestScanCancel(t *testing.T) {
	root := t.TempDir()
	for d := 0; d < 3; d++ {
		for f := 0; f < 1100; f++ {
			p := filepath.Join(root, string(rune('a'+d)), strings.Repeat("x", 1)+itoa(f)+".png")
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, nil, 0o644)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := Scan(ctx, root, ScanOptions{}, func(string, int64) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n >= 3300 {
		t.Fatalf("scan went on to the end (%d files) after cancel", n)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	s := []byte{digits[i/1000%10], digits[i/100%10], digits[i/10%10], digits[i%10]}
	return string(s)
}

// TestScanUnreadableAsUser runs the unreadable case of TestScan as the unprivileged
// user "nobody" when the tests run as root (root reads every file whatever its mode).
func TestScanUnreadableAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not root: TestScan checks unreadable files directly")
	}
	// The test binary and a scratch TMPDIR must be reachable by nobody.
	dir, err := os.MkdirTemp("", "scv-hpc-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o1777)
	bin := filepath.Join(dir, "sharding.test")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestScan$/unreadable", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestScan/unreadable") {
		t.Fatalf("the unreadable case did not run as nobody:\n%s", out)
	}
}

func TestScanLogsSkips(t *testing.T) {
	root := t.TempDir()
	for i := 0; i < maxSkipLogs+5; i++ {
		os.Symlink("/nowhere", filepath.Join(root, fmt.Sprintf("l%02d.png", i)))
	}
	var buf bytes.Buffer
	st, err := Scan(context.Background(), root, ScanOptions{Log: zerolog.New(&buf)}, func(string, int64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if st.Skipped != maxSkipLogs+5 || len(lines) != maxSkipLogs+1 ||
		!strings.Contains(lines[0], `"path":"l00.png"`) || !strings.Contains(lines[0], "broken symlink") {
		t.Fatalf("skipped %d, logged %d lines:\n%s", st.Skipped, len(lines), buf.String())
	}
}

// A data root reached through a symlink (a common /scratch layout) keeps its
// internal links: containment is checked against the resolved root.
func TestScanRootIsSymlink(t *testing.T) {
	base := t.TempDir()
	realDir := filepath.Join(base, "real")
	build(t, realDir, []entry{{path: "a/img.png", content: "12"}, {path: "abs.png", link: filepath.Join(realDir, "a", "img.png")}, {path: "rel.png", link: "a/img.png"}})
	link := filepath.Join(base, "link")
	if err := os.Symlink(realDir, link); err != nil {
		t.Fatal(err)
	}
	var got []found
	st, err := Scan(context.Background(), link, ScanOptions{OnSkip: func(rel, why string) { t.Errorf("skipped %s: %s", rel, why) }},
		func(rel string, size int64) error { got = append(got, found{rel, size}); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := []found{{"a/img.png", 2}, {"abs.png", 2}, {"rel.png", 2}}; !reflect.DeepEqual(got, want) || st.Bytes != 6 {
		t.Fatalf("found %v, want %v", got, want)
	}
}
