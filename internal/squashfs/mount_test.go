package squashfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestMountedByKernelAndSquashfuse mounts the writer's image of the sample
// tree with the Linux kernel's squashfs (as root) and with squashfuse (where
// /dev/fuse is usable), the two readers Apptainer and SingularityCE use, and
// compares every entry with what unsquashfs extracts from tar2sqfs's image of
// the same tar stream.
func TestMountedByKernelAndSquashfuse(t *testing.T) {
	testenv.Need(t, "unsquashfs", "tar2sqfs")
	if os.Geteuid() != 0 {
		t.Skip("needs root: the kernel mount, and extracting owners and devices")
	}
	stream := tarOf(t, sampleTree(t, DefaultBlockSize))
	dir := t.TempDir()
	ours, ref := filepath.Join(dir, "ours.sqfs"), filepath.Join(dir, "ref.sqfs")
	writeImage(t, ours, stream, Options{})
	cmd := exec.Command("tar2sqfs", "--quiet", "--force", "--no-xattr", "--no-skip", "--defaults", "mtime=0", ref)
	cmd.Stdin = bytes.NewReader(stream)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar2sqfs: %v\n%s", err, out)
	}
	want := filepath.Join(dir, "want")
	testenv.Run(t, "unsquashfs", "-n", "-no-xattrs", "-d", want, ref)
	wantSum := treeSum(t, want)

	mounted := 0
	for _, m := range []struct {
		name  string
		mount []string
	}{
		{"kernel", []string{"mount", "-t", "squashfs", "-o", "loop,ro", ours}},
		{"squashfuse", []string{"squashfuse", ours}},
	} {
		t.Run(m.name, func(t *testing.T) {
			if _, err := exec.LookPath(m.mount[0]); err != nil {
				t.Skipf("%s not installed", m.mount[0])
			}
			mnt := filepath.Join(dir, m.name)
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(m.mount[0], append(m.mount[1:], mnt)...).CombinedOutput(); err != nil {
				t.Skipf("cannot mount here (%v: %s)", err, out)
			}
			defer syscall.Unmount(mnt, syscall.MNT_DETACH)
			mounted++
			if got := treeSum(t, mnt); got != wantSum {
				t.Fatalf("the mounted tree differs:\n%s", firstDiff(got, wantSum))
			}
			// Directory link counts: 2 + subdirectories (unsquashfs does not show them).
			for p, n := range map[string]uint64{".": 11, "many": 2, "wide": 302, "home": 3} {
				var st syscall.Stat_t
				if err := syscall.Stat(filepath.Join(mnt, p), &st); err != nil {
					t.Fatal(err)
				}
				if st.Nlink != n {
					t.Errorf("%s has %d links, want %d", p, st.Nlink, n)
				}
			}
		})
	}
	if mounted == 0 {
		t.Skip("neither a kernel mount nor squashfuse worked here")
	}
}
