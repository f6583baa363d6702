package fetch

import (
	"errors"
	"os"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// flip inverts one byte of a file in place (a bit rot on disk: same size, same mtime
// class, different content).
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCatchesBitFlippedSIF: a cached SIF with one flipped byte inside its squashfs
// is reported as corrupt by Ensure (online and offline) and Resolve when Verify is set,
// and is returned as is without it (the per-task path, which must not hash).
func TestVerifyCatchesBitFlippedSIF(t *testing.T) {
	host, stop := startRegistry(t)
	image := host + "/lab/demo:1"
	testenv.Push(t, testImage(t, "amd64", demoFiles, map[string]string{PredictLabel: "/usr/local/bin/demo"}), image)
	o := newOptions(t, "", nil)
	m, err := Ensure(ctx(t), image, o)
	if err != nil || !m.Built {
		t.Fatalf("first pull: %+v %v", m, err)
	}
	st, err := os.Stat(m.SIF)
	if err != nil {
		t.Fatal(err)
	}
	flip(t, m.SIF, st.Size()-100) // inside the squashfs, the last object

	o.Verify = true
	for _, tc := range []struct {
		name    string
		offline bool
		call    func(Options) (*Model, error)
	}{
		{"pull online", false, func(o Options) (*Model, error) { return Ensure(ctx(t), image, o) }},
		{"offline run", true, func(o Options) (*Model, error) { return Ensure(ctx(t), image, o) }},
		{"resolve", true, func(o Options) (*Model, error) { return Resolve(ctx(t), image, o) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := o
			o.Offline = tc.offline
			_, err := tc.call(o)
			var ce *cache.CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, cache.ErrCorrupt) || ce.Path != m.SIF || ce.Digest != m.Digest {
				t.Fatalf("got %v; want a CorruptError for %s", err, m.SIF)
			}
		})
	}
	stop()
	o.Verify, o.Offline = false, true
	if got, err := Ensure(ctx(t), image, o); err != nil || got.SIF != m.SIF {
		t.Errorf("without Verify the cache is trusted (no hashing): %+v %v", got, err)
	}
}
