package fetch

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestDiskFullNamesThePlace pulls an image whose layers do not fit, once with
// the cache on a full file system and once with --tmpdir on one (layers kept
// there with NoLayerCache): each error names the place that is full, and
// never the other one.
func TestDiskFullNamesThePlace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	host, _ := startRegistry(t)
	big, err := random.Layer(3<<20, types.DockerLayer)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(testImage(t, "amd64", demoFiles, nil, "/usr/local/bin/demo"), big)
	if err != nil {
		t.Fatal(err)
	}
	ref := host + "/lab/big:1"
	testenv.Push(t, img, ref)
	tests := []struct {
		name               string
		fullCache, noCache bool
		want, notWant      string
	}{
		{"full cache", true, false, "cache ", "temporary directory"},
		{"full cache, no layer cache", true, true, "cache ", "temporary directory"},
		{"full tmpdir, no layer cache", false, true, "temporary directory", "point --cache elsewhere"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			small := t.TempDir()
			if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small).CombinedOutput(); err != nil {
				t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
			}
			t.Cleanup(func() { unmount(t, small) })
			o := newOptions(t, "", nil)
			o.NoLayerCache = tt.noCache
			if tt.fullCache {
				o.Cache = cache.Open(small)
			} else {
				o.TmpDir = small
			}
			_, err := Ensure(ctx(t), ref, o)
			assertNothingOpenUnder(t, small)
			if err == nil {
				t.Fatal("pull succeeded on a full disk")
			}
			if !errors.Is(err, syscall.ENOSPC) && !strings.Contains(err.Error(), "no space left") {
				t.Errorf("err = %v, want it to say no space left", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), small) {
				t.Errorf("err = %v, want it to name %q %s", err, tt.want, small)
			}
			if strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("err = %v, blames %q, which is not full", err, tt.notWant)
			}
			if errors.Is(err, ErrTmpFull) != !tt.fullCache {
				t.Errorf("err = %v: ErrTmpFull is %v, want %v", err, errors.Is(err, ErrTmpFull), !tt.fullCache)
			}
		})
	}
}

// assertNothingOpenUnder fails if this process still holds a file under dir
// open (an unlinked spool, a temp file): a failed pull must let go of them all.
func assertNothingOpenUnder(t *testing.T, dir string) {
	t.Helper()
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, dir+"/") {
			t.Errorf("still open after the failed pull: %s", l)
		}
	}
}

// unmount unmounts the test's file system at dir. Busy a second after the test (a file
// under it still open), it is detached, so that no mount outlives the test, and the
// test fails: a failed pull must let go of everything under the place that was full.
func unmount(t *testing.T, dir string) {
	var err error
	for range 10 {
		if err = syscall.Unmount(dir, 0); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("unmount %s: %v (still in use after the pull); detached", dir, err)
	_ = syscall.Unmount(dir, syscall.MNT_DETACH)
}
