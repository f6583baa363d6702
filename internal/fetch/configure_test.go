package fetch

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/config"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

func TestConfigure(t *testing.T) {
	cfg := &config.Config{Offline: true, TmpDir: "/t", Compression: "zstd", LayerCache: false}
	c := cache.Open(t.TempDir())
	o := Configure(cfg, c, nil, nil, zerolog.Nop(), nil)
	if !o.Offline || !o.Registry.Offline || o.TmpDir != "/t" || o.Compression != "zstd" || !o.NoLayerCache || o.Verify || o.Cache != c || o.Registry.Platform != "" {
		t.Errorf("without fetch flags: %+v", o)
	}
	reg := &registry.Options{Platform: "linux/arm64", Insecure: []string{"h:1"}}
	cfg = &config.Config{LayerCache: true}
	o = Configure(cfg, c, nil, reg, zerolog.Nop(), nil)
	if o.Offline || o.NoLayerCache || !o.Verify || o.Registry.Platform != "linux/arm64" || !slices.Equal(o.Registry.Insecure, reg.Insecure) {
		t.Errorf("with fetch flags: %+v", o)
	}
}

// TestSIFPath: a .sif path is taken as it is, even one that is not a SIF (inspect
// reports what is wrong with it); a model is looked up in the cache only.
func TestSIFPath(t *testing.T) {
	o := newOptions(t, "models:\n  - {name: demo, image: example.org/lab/demo:1}\n", nil)
	bogus := filepath.Join(t.TempDir(), "x.sif")
	if err := os.WriteFile(bogus, []byte("not a SIF"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		model, want string
		err         error
	}{
		{bogus, bogus, nil},
		{"demo", "", cache.ErrNotCached},
		{"no-such-model", "", catalog.ErrUnknown},
	} {
		got, err := SIFPath(ctx(t), tc.model, o)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("SIFPath(%s) = %q, %v; want %q, %v", tc.model, got, err, tc.want, tc.err)
		}
	}
}
