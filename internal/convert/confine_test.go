package convert

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
)

// TestFlattenHostile feeds layers built to write outside the rootfs. The
// decision: names and hard-link targets whose ".." climbs above the root
// fail the conversion (ErrUnsafePath); absolute names and paths through
// symlinks are resolved inside the root, as the container would see them.
// In no case is anything written next to the rootfs.
func TestFlattenHostile(t *testing.T) {
	// outside holds a file the layers try to reach by absolute host paths.
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	absDir := "/scv-hpc-hostile-" + filepath.Base(outside)

	tests := []struct {
		name    string
		layers  func(s sandbox) [][]ent
		wantErr error // nil: the conversion goes on
		check   func(t *testing.T, root string)
	}{
		{
			name:    "dot-dot name",
			layers:  func(sandbox) [][]ent { return [][]ent{{file("../../etc/x", "x", 0o644)}} },
			wantErr: ErrUnsafePath,
		},
		{
			name:    "dot-dot into the sentinel",
			layers:  func(sandbox) [][]ent { return [][]ent{{file("a/../../sentinel/x", "x", 0o644)}} },
			wantErr: ErrUnsafePath,
		},
		{
			name:   "absolute name stays in the root",
			layers: func(sandbox) [][]ent { return [][]ent{{file(absDir+"/x", "x", 0o644)}} },
			check: func(t *testing.T, root string) {
				wantFile(t, root, strings.TrimPrefix(absDir, "/")+"/x", "x")
				if _, err := os.Lstat(absDir); err == nil {
					t.Errorf("%s was created on the host", absDir)
				}
			},
		},
		{
			name: "write through symlink to /",
			layers: func(sandbox) [][]ent {
				return [][]ent{{symlink("evil", "/"), file("evil/pwned", "p", 0o644)}}
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, "pwned", "p")
				if _, err := os.Lstat("/pwned"); err == nil {
					t.Errorf("/pwned was created on the host")
				}
			},
		},
		{
			name: "write through symlink climbing with dot-dot",
			layers: func(sandbox) [][]ent {
				return [][]ent{{symlink("up", "../../.."), file("up/sentinel/pwned", "p", 0o644)}}
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, "sentinel/pwned", "p")
			},
		},
		{
			name: "write through symlink to the sentinel's host path, across layers",
			layers: func(s sandbox) [][]ent {
				return [][]ent{{symlink("evil", s.sentinel)}, {file("evil/pwned", "p", 0o644), dir("evil/d", 0o755)}}
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, filepath.Join(strings.TrimPrefix(filepath.Dir(root), "/"), "sentinel/pwned"), "p")
				if got, _ := os.Readlink(filepath.Join(root, "evil")); !strings.HasSuffix(got, "sentinel") {
					t.Errorf("symlink evil changed: %q", got)
				}
			},
		},
		{
			name: "chained symlinks",
			layers: func(s sandbox) [][]ent {
				return [][]ent{{symlink("a", "b/c"), symlink("b", "../.."), symlink("c", s.sentinel), file("a/x", "x", 0o644)}}
			},
			check: func(t *testing.T, root string) {
				wantFile(t, root, filepath.Join(strings.TrimPrefix(filepath.Dir(root), "/"), "sentinel/x"), "x")
			},
		},
		{
			name: "whiteout through a symlink removes nothing outside",
			layers: func(s sandbox) [][]ent {
				return [][]ent{{symlink("evil", outside)}, {whiteout("evil/.wh.secret"), whiteout("evil/.wh..wh..opq")}}
			},
		},
		{
			name:    "hard link to dot-dot outside",
			layers:  func(sandbox) [][]ent { return [][]ent{{hardlink("h", "../outside")}} },
			wantErr: ErrUnsafePath,
		},
		{
			name: "hard link through a symlink to a host file",
			layers: func(sandbox) [][]ent {
				return [][]ent{{symlink("evil", outside), hardlink("h", "evil/secret")}}
			},
			wantErr: os.ErrNotExist, // resolved inside the root, where there is no such file
		},
		{
			name: "hard link to an absolute host path",
			layers: func(sandbox) [][]ent {
				return [][]ent{{hardlink("h", secret)}}
			},
			wantErr: os.ErrNotExist,
		},
		{
			name: "symlink loop",
			layers: func(sandbox) [][]ent {
				return [][]ent{{symlink("l1", "l2"), symlink("l2", "l1"), file("l1/x", "x", 0o644)}}
			},
			wantErr: errTooManyLinks,
		},
		{
			// The writer remembers directories it made; one replaced by a symlink
			// (by a later entry, a whiteout, or an opaque directory) must be looked
			// at again, not written through.
			name: "a directory written into, then replaced by a symlink, then written through",
			layers: func(s sandbox) [][]ent {
				return [][]ent{
					{dir("a", 0o755), dir("a/b", 0o755), file("a/b/f", "1", 0o644)},
					{symlink("a", s.sentinel), file("a/b/pwned", "p", 0o644)},
					{file(".wh.a", "", 0o644), dir("c", 0o755), file("c/f", "1", 0o644)},
					{symlink("c", "/"), file("c/a/pwned2", "p", 0o644)},
					{dir("d", 0o755), dir("d/e", 0o755), file("d/.wh..wh..opq", "", 0o644), symlink("d/e", s.sentinel), file("d/e/pwned3", "p", 0o644)},
				}
			},
			check: func(t *testing.T, root string) {
				rel := strings.TrimPrefix(filepath.Dir(root), "/")
				wantFile(t, root, filepath.Join(rel, "sentinel/b/pwned"), "p")
				wantFile(t, root, "a/pwned2", "p")
				wantFile(t, root, filepath.Join(rel, "sentinel/pwned3"), "p")
			},
		},
		{
			name: "replacing a parent with a symlink after a read-only dir",
			layers: func(s sandbox) [][]ent {
				return [][]ent{{dir("p", 0o755), dir("p/ro", 0o500)}, {symlink("p", s.sentinel)}}
			},
			check: func(t *testing.T, root string) {
				if fi, err := os.Stat(filepath.Join(filepath.Dir(root), "sentinel")); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("sentinel mode changed: %v %v", fi, err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			r, err := newRootFS(s.root)
			if err != nil {
				t.Fatal(err)
			}
			img := imageOf(t, v1.Config{}, tt.layers(s)...)
			_, err = flattenImage(t.Context(), img, r, testLogger(t))
			assertStreamAgrees(t, img, s.root, err)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("flatten: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("flatten error = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, s.root)
			}
			s.assertConfined(t)
			if b, err := os.ReadFile(secret); err != nil || string(b) != "host secret" {
				t.Errorf("host file changed: %q %v", b, err)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(secret, &st); err != nil || st.Nlink != 1 {
				t.Errorf("host file got a hard link: nlink=%d %v", st.Nlink, err)
			}
		})
	}
}

func TestCleanEntryName(t *testing.T) {
	tests := []struct {
		in, want string
		unsafe   bool
	}{
		{"etc/passwd", "etc/passwd", false},
		{"./etc/passwd", "etc/passwd", false},
		{"/etc/passwd", "etc/passwd", false},
		{"//etc//x/", "etc/x", false},
		{"a/../b", "b", false},
		{"./", "", false},
		{"/", "", false},
		{"..", "", true},
		{"../x", "", true},
		{"a/../../x", "", true},
		{"/../x", "", true}, // a climb above the start is refused, absolute or not
		{"a\x00b", "", true},
	}
	for _, tt := range tests {
		got, err := cleanEntryName(tt.in)
		if tt.unsafe {
			if !errors.Is(err, ErrUnsafePath) {
				t.Errorf("cleanEntryName(%q) = %q, %v; want ErrUnsafePath", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("cleanEntryName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzResolveInRoot checks that no entry name, through any of a set of
// hostile symlinks, resolves outside the root, and that accepted tar names
// never climb above it.
func FuzzResolveInRoot(f *testing.F) {
	for _, s := range []string{"evil/pwned", "up/x", "../../etc/x", "/abs/x", "loop1/x", "a/../../b", "deep/../../..", "rel/../../x", "//x//y/.."} {
		f.Add(s)
	}
	root := f.TempDir()
	for name, target := range map[string]string{
		"evil": "/", "up": "../../..", "loop1": "loop2", "loop2": "loop1", "deep": "a/b/c/../../../../..",
		"rel": "up/up", "host": "/etc", "dot": ".",
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "a/b/c"), 0o755); err != nil {
		f.Fatal(err)
	}
	r, err := newRootFS(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if rel, err := cleanEntryName(name); err == nil {
			if rel == ".." || strings.HasPrefix(rel, "../") || strings.HasPrefix(rel, "/") {
				t.Fatalf("cleanEntryName(%q) = %q escapes", name, rel)
			}
		}
		for _, follow := range []bool{true, false} {
			res, err := r.resolve(name, follow)
			if err != nil {
				continue // loops, names too long for the kernel: refused, never escaped
			}
			host := r.host(res)
			if host != r.root && !strings.HasPrefix(host, r.root+"/") {
				t.Fatalf("resolve(%q) = %q, outside %q", name, host, r.root)
			}
			for _, part := range strings.Split(res, "/") {
				if part == ".." || (part == "." && res != ".") {
					t.Fatalf("resolve(%q) = %q holds %q", name, res, part)
				}
			}
		}
	})
}

// FuzzFlattenEntries applies layers of fuzzed entries (name, type, link
// target; "@S" in a target stands for the sentinel's host path) and checks
// that nothing is ever written outside the rootfs, whatever the outcome.
func FuzzFlattenEntries(f *testing.F) {
	f.Add("evil", byte(tar.TypeSymlink), "/", "evil/pwned", byte(tar.TypeReg), "")
	f.Add("evil", byte(tar.TypeSymlink), "@S", "evil/x/y", byte(tar.TypeDir), "")
	f.Add("up", byte(tar.TypeSymlink), "../../..", "up/sentinel/p", byte(tar.TypeReg), "")
	f.Add("a", byte(tar.TypeSymlink), "@S", "h", byte(tar.TypeLink), "a/../x")
	f.Add("d", byte(tar.TypeSymlink), "@S", "d/.wh..wh..opq", byte(tar.TypeReg), "")
	f.Add("x", byte(tar.TypeReg), "", "../x", byte(tar.TypeLink), "x")
	types := []byte{tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo}
	f.Fuzz(func(t *testing.T, n1 string, t1 byte, l1 string, n2 string, t2 byte, l2 string) {
		s := newSandbox(t)
		mk := func(name string, typ byte, link string) ent {
			typ = types[int(typ)%len(types)]
			return ent{name: name, typ: typ, mode: 0o755, link: strings.ReplaceAll(link, "@S", s.sentinel), body: "x"}
		}
		e1, e2 := mk(n1, t1, l1), mk(n2, t2, l2)
		for _, e := range []ent{e1, e2} {
			tw := tar.NewWriter(io.Discard)
			if tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Format: tar.FormatPAX}) != nil {
				return // no layer can carry this name
			}
		}
		img := imageOf(t, v1.Config{}, []ent{e1}, []ent{e2})
		r, err := newRootFS(s.root)
		if err != nil {
			t.Fatal(err)
		}
		_, ferr := flattenImage(t.Context(), img, r, zerolog.Nop())
		s.assertConfined(t)
		assertStreamAgrees(t, img, s.root, ferr)
	})
}
