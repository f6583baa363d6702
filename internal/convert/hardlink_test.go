package convert

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestLayerHardLinks: hard links across layers, as a filesystem would keep
// them: a link to a link is a third name of the file; a link keeps the file
// when a later layer replaces or removes the name it was made to; many
// names of one file. Each packer's image, extracted by unsquashfs, must give
// each name its link count and its content.
func TestLayerHardLinks(t *testing.T) {
	testenv.Need(t, "tar2sqfs", "unsquashfs")
	if os.Geteuid() != 0 {
		t.Skip("unsquashfs keeps hard links only as root")
	}
	many := []ent{file("a", "many", 0o644)}
	manyWant := map[string]string{"a": "1001 many"}
	for i := range 1000 {
		n := fmt.Sprintf("h%04d", i)
		many = append(many, hardlink(n, "a"))
		manyWant[n] = "1001 many"
	}
	tests := []struct {
		name   string
		layers [][]ent
		want   map[string]string // name: "nlink content" (a symlink's target)
	}{
		{"1000 links to one file", [][]ent{many}, manyWant},
		{"a link to a link", [][]ent{{file("a", "x", 0o644), hardlink("b", "a"), hardlink("c", "b")}},
			map[string]string{"a": "3 x", "b": "3 x", "c": "3 x"}},
		{"a link in a later layer", [][]ent{{file("a", "x", 0o644)}, {hardlink("b", "a")}},
			map[string]string{"a": "2 x", "b": "2 x"}},
		{"the target replaced above", [][]ent{{file("a", "old", 0o644), hardlink("b", "a")}, {file("a", "new", 0o644)}},
			map[string]string{"a": "1 new", "b": "1 old"}},
		{"the target removed above", [][]ent{{file("a", "old", 0o644), hardlink("b", "a"), hardlink("c", "a")}, {whiteout(".wh.a")}},
			map[string]string{"b": "2 old", "c": "2 old"}},
		{"the link replaced above", [][]ent{{file("a", "x", 0o644), hardlink("b", "a")}, {file("b", "y", 0o644)}},
			map[string]string{"a": "1 x", "b": "1 y"}},
		{"the target's directory made opaque", [][]ent{{file("d/a", "x", 0o644), hardlink("e/b", "d/a")}, {whiteout("d/.wh..wh..opq")}},
			map[string]string{"e/b": "1 x"}},
		{"the target's directory replaced by a file", [][]ent{{file("d/a", "x", 0o644), hardlink("b", "d/a")}, {file("d", "f", 0o644)}},
			map[string]string{"b": "1 x", "d": "1 f"}},
		{"a link to a symlink", [][]ent{{symlink("s", "target"), hardlink("h", "s")}},
			map[string]string{"s": "2 target", "h": "2 target"}},
	}
	for _, tc := range tests {
		img := imageOf(t, demoConfig, tc.layers...)
		for _, o := range []Options{{Packer: PackerBuiltin}, {Packer: PackerBuiltin, TwoPass: true}, {Packer: PackerTar2sqfs}} {
			t.Run(fmt.Sprintf("%s/%s two-pass %v", tc.name, o.Packer, o.TwoPass), func(t *testing.T) {
				o.Log = testLogger(t)
				dst := convertTo(t, img, t.TempDir(), "out.sif", o)
				// unsquashfs makes the links it finds (the link counts are its own);
				// the kernel reads each inode's count.
				roots := []string{filepath.Join(t.TempDir(), "root")}
				if err := sif.ExtractRootfs(t.Context(), dst, roots[0]); err != nil {
					t.Fatal(err)
				}
				if mnt := mountSIF(t, dst); mnt != "" {
					roots = append(roots, mnt)
				} else if o.Packer == PackerBuiltin {
					t.Log("the kernel cannot mount the image here: link counts are unsquashfs's")
				}
				for _, root := range roots {
					for name, want := range tc.want {
						p := filepath.Join(root, name)
						fi, err := os.Lstat(p)
						if err != nil {
							t.Fatal(err)
						}
						content, err := os.Readlink(p)
						if err != nil {
							b, rerr := os.ReadFile(p)
							if rerr != nil {
								t.Fatal(rerr)
							}
							content = string(b)
						}
						if got := fmt.Sprintf("%d %s", fi.Sys().(*syscall.Stat_t).Nlink, content); got != want {
							t.Errorf("%s: links and content %q, want %q", p, got, want)
						}
					}
				}
			})
		}
	}
}

// mountSIF mounts the squashfs of the SIF read-only with the kernel, until
// the test ends; "" where it cannot (not root, no loop devices).
func mountSIF(t *testing.T, sifPath string) string {
	off, _, err := sif.PrimaryPartition(sifPath)
	if err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "squashfs", "-o", fmt.Sprintf("loop,ro,offset=%d", off), sifPath, mnt).CombinedOutput(); err != nil {
		t.Logf("mount: %v: %s", err, out)
		return ""
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
	return mnt
}
