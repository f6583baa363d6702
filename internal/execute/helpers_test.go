package execute

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

func TestMain(m *testing.M) {
	container.MaybeRunChild() // the builtin runtime's child, when this binary is it
	os.Exit(m.Run())
}

// testModelPath is where the test model's image holds it.
const testModelPath = "/usr/local/bin/testmodel"

// models is a catalog source of the test model (an OCI layout written here, its
// predict label failing the inputs named img3.png): "tm", which wants no GPU, and
// "tm-gpu", which wants one. Fetching it converts the image into a cache.
type models struct {
	layout   string
	catalog  *catalog.Catalog
	cacheDir string
	fetches  int // calls of fetch
}

func newModels(t *testing.T) *models {
	t.Helper()
	testenv.Need(t, "unsquashfs")
	img := testenv.Image(t, []imagebuild.File{{Path: testModelPath, Src: testenv.BuildProgram(t, "./internal/runner/testdata/testmodel"), Mode: 0o755}},
		imagebuild.Config{Labels: map[string]string{fetch.PredictLabel: testModelPath + " -fail-on img3.png"}})
	m := &models{layout: filepath.Join(t.TempDir(), "layout"), cacheDir: filepath.Join(t.TempDir(), "cache")}
	if err := imagebuild.WriteLayout(m.layout, img, "tm"); err != nil {
		t.Fatal(err)
	}
	old := catalog.SiteFile
	catalog.SiteFile = filepath.Join(t.TempDir(), "no-site-catalog.yaml")
	t.Cleanup(func() { catalog.SiteFile = old })
	cat := filepath.Join(t.TempDir(), "catalog.yaml")
	image := "oci-layout:" + m.layout + ":tm"
	yaml := fmt.Sprintf("models:\n  - {name: tm, image: %q}\n  - {name: tm-gpu, image: %q, gpu: true}\n", image, image)
	if err := os.WriteFile(cat, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if m.catalog, err = catalog.Load(cat); err != nil {
		t.Fatal(err)
	}
	return m
}

// fetch is a request's Fetch: options for the models' cache and catalog, counted.
func (m *models) fetch() (fetch.Options, error) {
	m.fetches++
	return fetch.Options{Cache: cache.Open(m.cacheDir), Catalog: m.catalog, Log: zerolog.Nop(), Registry: registry.Options{Log: zerolog.Nop()}}, nil
}

// untouched fails t when anything fetched the model or made the cache.
func (m *models) untouched(t *testing.T) {
	t.Helper()
	if m.fetches != 0 {
		t.Errorf("the fetch options were asked for %d time(s)", m.fetches)
	}
	if _, err := os.Stat(m.cacheDir); !os.IsNotExist(err) {
		t.Errorf("the cache was touched: %v", err)
	}
}

// parse defines the flags of add on a new flag set, parses args and returns which
// flags were given: what cobra hands a command.
func parse(t *testing.T, args []string, add ...func(*pflag.FlagSet)) func(string) bool {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, a := range add {
		a(fs)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return fs.Changed
}

// dataset writes n inputs img0.png … into a new directory.
func dataset(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("img%d.png", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
