package convert

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestConvertUnprivileged runs the path of a conversion without root (as on
// a login node): owners, exact modes and device nodes reach the squashfs
// through mksquashfs's pseudo file, and the output is still deterministic.
func TestConvertUnprivileged(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	saved := runningAsRoot
	runningAsRoot = func() bool { return false }
	t.Cleanup(func() { runningAsRoot = saved })

	img := imageOf(t, v1.Config{Cmd: []string{"/bin/sh"}},
		[]ent{
			owned(dir("home/u", 0o700), 1000, 1000),
			owned(file("home/u/secret", "s", 0o400), 1000, 100),
			owned(file("home/u/with space", "w", 0o640), 1000, 1000),
			owned(file("usr/bin/su", "su", 0o4755), 0, 0),
			owned(symlink("home/u/link", "secret"), 1000, 1000),
			owned(dir("etc/ro", 0o555), 0, 0),
			chardev("dev/null", 1),
			owned(chardev("dev/gone", 5), 0, 0),
			owned(file("dev/replaced", "x", 0o644), 0, 0),
		},
		[]ent{whiteout("dev/.wh.gone"), owned(file("etc/ro/f", "f", 0o000), 7, 8)},
	)
	out := t.TempDir()
	a := convertTo(t, img, out, "a.sif", Options{})
	b := convertTo(t, img, out, "b.sif", Options{})
	if testenv.FileSHA256(t, a) != testenv.FileSHA256(t, b) {
		t.Error("unprivileged conversion is not deterministic")
	}
	if saved() {
		// Root and unprivileged conversions of one image give the same bytes.
		runningAsRoot = saved
		c := convertTo(t, img, out, "c.sif", Options{})
		runningAsRoot = func() bool { return false }
		if testenv.FileSHA256(t, a) != testenv.FileSHA256(t, c) {
			t.Error("root and unprivileged conversions differ")
		}
	}
	off, _, err := sif.PrimaryPartition(a)
	if err != nil {
		t.Fatal(err)
	}
	ls := testenv.Run(t, "unsquashfs", "-lln", "-o", fmt.Sprint(off), a)
	for _, want := range []string{
		`drwx------ 1000/1000 .* squashfs-root/home/u$`,
		`-r-------- 1000/100 .* squashfs-root/home/u/secret$`,
		`-rw-r----- 1000/1000 .* squashfs-root/home/u/with space$`,
		`-rwsr-xr-x 0/0 .* squashfs-root/usr/bin/su$`,
		`lrwxrwxrwx 1000/1000 .* squashfs-root/home/u/link -> secret$`,
		`dr-xr-xr-x 0/0 .* squashfs-root/etc/ro$`,
		`---------- 7/8 .* squashfs-root/etc/ro/f$`,
		`crw-rw-rw- 0/0 .*1,\s+0 .* squashfs-root/dev/null$`,
		`-rwxr-xr-x 0/0 .* squashfs-root/.singularity.d/runscript$`,
		`drwxr-xr-x 0/0 .* squashfs-root/.singularity.d$`,
		`drwxr-xr-x 0/0 .* squashfs-root$`,
	} {
		if !regexp.MustCompile(`(?m)^` + want).MatchString(ls) {
			t.Errorf("unsquashfs -lln lacks %s", want)
		}
	}
	if strings.Contains(ls, "dev/gone") {
		t.Error("whited-out device node is in the squashfs")
	}
	if t.Failed() {
		t.Logf("unsquashfs -lln:\n%s", ls)
	}
}

func TestPseudoName(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"usr/bin/x", "usr/bin/x", true},
		{"a b", `a\ b`, true},
		{`back\slash`, `back\\slash`, true},
		{`q"u'o`, `q\"u\'o`, true},
		{"tab\there", "tab\\\there", true},
		{"new\nline", "", false},
	}
	for _, tt := range tests {
		got, ok := pseudoName(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("pseudoName(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
