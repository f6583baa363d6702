package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCheckApart: data, scratch and output directories inside one another (also
// through a symlink) are refused; side by side they are fine.
func TestCheckApart(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"data/sub", "scratch", "job/outputs", "datamore"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(base, "data", "sub"), filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	p := func(s string) string { return filepath.Join(base, s) }
	for _, c := range []struct {
		name                  string
		data, scratch, output string
		bad                   bool
	}{
		{"apart", p("data"), p("scratch"), p("job/outputs"), false},
		{"no output", p("data"), p("scratch"), "", false},
		{"prefix is not inside", p("data"), p("datamore"), "", false},
		{"same scratch", p("data"), p("data"), "", true},
		{"scratch inside data", p("data"), p("data/sub"), "", true},
		{"data inside scratch", p("data/sub"), p("data"), "", true},
		{"output inside data", p("data"), p("scratch"), p("data/sub"), true},
		{"data inside output", p("job/outputs"), p("scratch"), p("job"), true},
		{"through a symlink", p("data"), p("link"), "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkApart(Spec{DataRoot: c.data, Scratch: c.scratch, Output: c.output})
			if got := errors.Is(err, ErrOverlap); got != c.bad {
				t.Errorf("checkApart = %v, want overlap %v", err, c.bad)
			}
			if c.bad && !strings.Contains(err.Error(), c.data) {
				t.Errorf("the error does not name the data directory: %v", err)
			}
		})
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/tmp/plain`:           "/tmp/plain",
		`/tmp/my\040data`:      "/tmp/my data",
		`/a\011b\012c\134d`:    "/a\tb\nc\\d",
		`/trailing\`:           `/trailing\`,
		`/short\04`:            `/short\04`,
		`/not\999octal`:        `/not\999octal`,
		`/x\040\040y`:          "/x  y",
		`/\342\202\254-utf8`:   "/€-utf8",
		`/just\040at\040ends\`: `/just at ends\`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGPUNodes: only NVIDIA character devices (and those in nvidia-caps) are bound,
// never a regular file, a directory or a block device of that name.
func TestGPUNodes(t *testing.T) {
	needRoot(t)
	dev := t.TempDir()
	mk := func(name string, mode uint32, d int) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dev, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(filepath.Join(dev, name), mode|0o666, d); err != nil {
			t.Fatal(err)
		}
	}
	mk("nvidia0", unix.S_IFCHR, int(unix.Mkdev(195, 0)))
	mk("nvidia1", unix.S_IFCHR, int(unix.Mkdev(195, 1)))
	mk("nvidiactl", unix.S_IFCHR, int(unix.Mkdev(195, 255)))
	mk("nvidia-uvm", unix.S_IFCHR, int(unix.Mkdev(510, 0)))
	mk("nvidia-caps/nvidia-cap1", unix.S_IFCHR, int(unix.Mkdev(511, 1)))
	mk("nvidia-block", unix.S_IFBLK, int(unix.Mkdev(7, 0)))
	mk("null", unix.S_IFCHR, int(unix.Mkdev(1, 3)))
	os.WriteFile(filepath.Join(dev, "nvidia-file"), nil, 0o644)
	os.Mkdir(filepath.Join(dev, "nvidia-dir"), 0o755)
	got := gpuNodes(dev)
	slices.Sort(got)
	want := []string{"nvidia-caps/nvidia-cap1", "nvidia-uvm", "nvidia0", "nvidia1", "nvidiactl"}
	if !slices.Equal(got, want) {
		t.Errorf("gpuNodes = %v, want %v", got, want)
	}
}

// TestBuiltinRefusesSymlinkedMountPoint: an image whose /tmp is a symlink (a mount
// there would follow it on the host) is refused with a clear error, and the host
// directory it points at gets nothing.
func TestBuiltinRefusesSymlinkedMountPoint(t *testing.T) {
	target := t.TempDir()
	img := buildImage(t, []string{"PATH=/bin"}, "probe", func(rootfs string) {
		if err := os.Symlink(target, filepath.Join(rootfs, "tmp")); err != nil {
			t.Fatal(err)
		}
	})
	rt := NewBuiltin(BuiltinOptions{Dir: t.TempDir(), Log: nopLog})
	cmd, err := rt.Command(context.Background(), Spec{SIF: img, Command: []string{"probe"}, DataRoot: t.TempDir(), Scratch: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "/tmp of the image") || !strings.Contains(string(out), errMountPoint.Error()) {
		t.Errorf("symlinked /tmp: err %v, output %q", err, out)
	}
	if ents, _ := os.ReadDir(target); len(ents) > 0 {
		t.Errorf("the symlink's target got %d entries", len(ents))
	}
}
