package fetch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
	o := newOptions(t, fmt.Sprintf("models:\n  - {name: demo, image: %q}\n  - {name: later, image: %q, predict: [serve, --x]}\n", image, host+"/lab/later:1"), nil)
	before := DescribeAll(o.Cache, o.Catalog, o.Log)
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
	after := DescribeAll(o.Cache, o.Catalog, o.Log)
	byID := func(ms []CatalogModel, id string) CatalogModel {
		for _, m := range ms {
			if m.Name == id {
				return m
			}
		}
		t.Fatalf("no %s in %+v", id, ms)
		return CatalogModel{}
	}
	if b, a := byID(before, "demo"), byID(after, "demo"); b.Cached || len(b.Command) > 0 || !a.Cached || a.Digest != digest || a.From != PredictFromEntrypoint {
		t.Errorf("Describe demo: before %+v, after %+v", b, a)
	}
	if l := byID(after, "later"); l.Cached || l.From != PredictFromCatalog || len(l.Command) != 2 {
		t.Errorf("Describe later: %+v", l)
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

// TestCachedDigestsAndRemove: models resolve to their cached digests from the cache
// alone; Remove removes each it can and reports the others, explained.
func TestCachedDigestsAndRemove(t *testing.T) {
	_, image, digest, o := demoModel(t)
	if _, err := Pull(ctx(t), "demo", o, false); err != nil {
		t.Fatal(err)
	}
	explain := func(m string, err error) error { return fmt.Errorf("%w (explained for %s)", err, m) }
	if ds, err := CachedDigests(o, []string{"demo", image, digest}, explain); err != nil || len(ds) != 3 || ds[0] != digest || ds[1] != digest || ds[2] != digest {
		t.Errorf("CachedDigests = %v, %v; want the digest three times", ds, err)
	}
	if _, err := CachedDigests(o, []string{"demo", "nosuch/x:1"}, explain); !errors.Is(err, cache.ErrNotCached) || !strings.HasSuffix(err.Error(), "(explained for nosuch/x:1)") {
		t.Errorf("CachedDigests of an uncached image: %v", err)
	}
	var gone []string
	err := Remove(o, []string{"nosuch/x:1", "demo"}, explain, func(m, d string) { gone = append(gone, m+"="+d) })
	if !errors.Is(err, cache.ErrNotCached) || !strings.Contains(err.Error(), "(explained for nosuch/x:1)") || len(gone) != 1 || gone[0] != "demo="+digest {
		t.Errorf("Remove = %v, removed %v; want demo removed and the other explained", err, gone)
	}
	if _, err := CachedDigest(o, "demo"); !errors.Is(err, cache.ErrNotCached) {
		t.Errorf("demo still cached after Remove: %v", err)
	}
}

// TestInspectAndExport: a cached model is inspected from its SIF, runscript included,
// and exported as a bundle; a model that is not cached is explained, and no bundle is
// written for it.
func TestInspectAndExport(t *testing.T) {
	host, _, digest, o := demoModel(t)
	other := host + "/lab/other:1"
	testenv.Push(t, testImage(t, "amd64", demoFiles, map[string]string{"other": "1"}, "/usr/local/bin/demo"), other)
	m, err := Pull(ctx(t), "demo", o, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ctx(t), other, o, false); err != nil { // in the cache, not exported
		t.Fatal(err)
	}
	for _, model := range []string{"demo", m.SIF} {
		info, err := Inspect(ctx(t), model, o)
		if err != nil {
			t.Fatalf("Inspect(%s): %v", model, err)
		}
		if info.Path != m.SIF || !strings.Contains(info.Runscript, "/usr/local/bin/demo") {
			t.Errorf("Inspect(%s): path %s, runscript %q; want %s and one running the entrypoint", model, info.Path, info.Runscript, m.SIF)
		}
	}
	if _, err := Inspect(ctx(t), "nosuch/x:1", o); !errors.Is(err, cache.ErrNotCached) {
		t.Errorf("Inspect of an uncached image: %v", err)
	}

	explain := func(m string, err error) error { return fmt.Errorf("%w (explained for %s)", err, m) }
	bundle := filepath.Join(t.TempDir(), "b.tar")
	if _, err := Export(ctx(t), o, bundle, io.Discard, []string{"demo", "nosuch/x:1"}, explain); !errors.Is(err, cache.ErrNotCached) || !strings.HasSuffix(err.Error(), "(explained for nosuch/x:1)") {
		t.Errorf("Export with an uncached image: %v", err)
	}
	if _, err := os.Stat(bundle); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a bundle was written for a failed export: %v", err)
	}
	n, err := Export(ctx(t), o, bundle, io.Discard, []string{"demo"}, explain)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(bundle)
	if err != nil || fi.Size() != n {
		t.Fatalf("bundle: %v, size %d; Export said %d", err, fi.Size(), n)
	}
	into := cache.Open(filepath.Join(t.TempDir(), "cache"))
	if _, err := into.ImportFrom(ctx(t), bundle, nil, cache.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := into.List(); err != nil || len(got) != 1 || got[0].Digest != digest {
		t.Errorf("imported entries %v, %v; want %s", got, err, digest)
	}
}
