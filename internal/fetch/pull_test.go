package fetch

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestPullForce: force converts a cached model again; offline it is refused; an
// uncached model is simply pulled.
func TestPullForce(t *testing.T) {
	host, _ := startRegistry(t)
	image := host + "/lab/demo:1"
	digest := testenv.Push(t, testImage(t, "amd64", demoFiles, nil, "/usr/local/bin/demo"), image)
	o := newOptions(t, fmt.Sprintf("models:\n  - {name: demo, image: %q}\n", image), nil)
	for _, tc := range []struct {
		name    string
		force   bool
		offline bool
		built   bool
		err     error
	}{
		{"first pull", true, false, true, nil}, // nothing cached: nothing removed
		{"cached", false, false, false, nil},
		{"forced", true, false, true, nil},
		{"forced offline", true, true, false, ErrForceOffline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := o
			o.Offline, o.Registry.Offline = tc.offline, tc.offline
			m, err := Pull(ctx(t), "demo", o, tc.force)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Pull: %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || m.Built != tc.built || m.Digest != digest {
				t.Fatalf("Pull = %+v, %v; want built=%v", m, err, tc.built)
			}
		})
	}
	if d, err := CachedDigest(o, "demo"); err != nil || d != digest {
		t.Errorf("CachedDigest(demo) = %s, %v", d, err)
	}
	if _, err := CachedDigest(o, "nosuch/x:1"); !errors.Is(err, cache.ErrNotCached) {
		t.Errorf("CachedDigest of an uncached image: %v", err)
	}
	f, _ := os.CreateTemp(t.TempDir(), "*.sif")
	f.Close()
	if _, err := CachedDigest(o, f.Name()); !errors.Is(err, ErrNotAnEntry) {
		t.Errorf("CachedDigest of a .sif file: %v", err)
	}
}
