package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
)

// TestOffline stages one of two catalog models into a real cache and checks that the
// report names the cached one and tells how to stage the other.
func TestOffline(t *testing.T) {
	old := catalog.SiteFile
	catalog.SiteFile = ""
	t.Cleanup(func() { catalog.SiteFile = old })
	dir := t.TempDir()
	catFile := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catFile, []byte(`models:
  - name: plankton
    version: "2.0"
    image: registry.example.org/scv/plankton:2.0
  - name: faces-big
    version: "1.0"
    image: registry.example.org/scv/faces-big:1.0
`), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Load(catFile)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(dir, "cache")
	store := cache.Open(cacheDir)
	digest := "sha256:" + strings.Repeat("ab", 32)
	_, _, _, err = store.Commit(context.Background(), digest, func(_ context.Context, tmp string) (*cache.Meta, error) {
		di, err := sif.NewDescriptorInput(sif.DataGeneric, bytes.NewReader([]byte("not really a root filesystem")))
		if err != nil {
			return nil, err
		}
		f, err := sif.CreateContainerAtPath(tmp, sif.OptCreateWithDescriptors(di))
		if err != nil {
			return nil, err
		}
		return nil, f.UnloadContainer()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SetRef("registry.example.org/scv/plankton:2.0", digest); err != nil {
		t.Fatal(err)
	}
	// A ref to an entry that is gone is reported, not counted as cached.
	if err := store.SetRef("faces-big@1.0", "sha256:"+strings.Repeat("cd", 32)); err != nil {
		t.Fatal(err)
	}

	c := find(t, Run(context.Background(), Options{CacheDir: cacheDir, TmpDir: dir, Catalog: cat}), "offline readiness")
	if c.Status != Warn {
		t.Errorf("status %s, want warn: %+v", c.Status, c)
	}
	for _, want := range []string{"plankton@2.0", "not cached: faces-big@1.0"} {
		if !strings.Contains(c.Detail, want) {
			t.Errorf("detail %q lacks %q", c.Detail, want)
		}
	}
	if !strings.Contains(c.Fix, "scv-hpc stage") || !strings.Contains(c.Fix, "faces-big@1.0") || strings.Contains(c.Fix, "plankton") {
		t.Errorf("fix %q should stage faces-big only", c.Fix)
	}
	if !strings.Contains(c.Detail, "catalog models cached") {
		t.Errorf("detail %q", c.Detail)
	}

	// Once every model is cached, the check is ok.
	for _, e := range cat.Entries() { // the embedded default catalog's models too
		if err := store.SetRef(e.ID(), digest); err != nil {
			t.Fatal(err)
		}
	}
	if c := find(t, Run(context.Background(), Options{CacheDir: cacheDir, TmpDir: dir, Catalog: cat}), "offline readiness"); c.Status != OK {
		t.Errorf("all cached: %+v", c)
	}
}
