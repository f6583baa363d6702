package fetch

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// startRegistry serves go-containerregistry's in-process registry on 127.0.0.1.
func startRegistry(t *testing.T) (host string, stop func()) {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), srv.Close
}

// testImage builds a one-layer image holding files, for linux/arch.
func testImage(t *testing.T, arch string, files []imagebuild.File, labels map[string]string, entrypoint ...string) v1.Image {
	t.Helper()
	return testenv.Image(t, files, imagebuild.Config{
		Platform:   "linux/" + arch,
		Labels:     labels,
		Entrypoint: entrypoint,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
	})
}

// newOptions returns Options with a fresh cache and a catalog made of catalogYAML.
func newOptions(t *testing.T, catalogYAML string, logTo io.Writer) Options {
	t.Helper()
	testenv.Need(t, "mksquashfs")
	old := catalog.SiteFile
	catalog.SiteFile = filepath.Join(t.TempDir(), "no-site-catalog.yaml")
	t.Cleanup(func() { catalog.SiteFile = old })
	var extra []string
	if catalogYAML != "" {
		p := filepath.Join(t.TempDir(), "catalog.yaml")
		if err := os.WriteFile(p, []byte(catalogYAML), 0o644); err != nil {
			t.Fatal(err)
		}
		extra = append(extra, p)
	}
	cat, err := catalog.Load(extra...)
	if err != nil {
		t.Fatal(err)
	}
	if logTo == nil {
		logTo = io.Discard
	}
	lg := zerolog.New(logTo)
	return Options{
		Cache:    cache.Open(filepath.Join(t.TempDir(), "cache")),
		Catalog:  cat,
		TmpDir:   t.TempDir(),
		Log:      lg,
		Registry: registry.Options{Retries: -1, Log: lg},
	}
}

var demoFiles = []imagebuild.File{
	{Path: "/usr/local/bin/demo", Mode: 0o755, Data: []byte("#!/bin/sh\necho demo\n")},
	{Path: "/etc/demo.conf", Mode: 0o755, Data: []byte("threshold=0.5\n")},
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	return t.Context()
}

// demoModel starts a registry, pushes the demo image (entrypoint /usr/local/bin/demo)
// as HOST/lab/demo:1 and returns the host, the image, its digest and options whose
// catalog names it demo.
func demoModel(t *testing.T) (host, image, digest string, o Options) {
	t.Helper()
	host, _ = startRegistry(t)
	image = host + "/lab/demo:1"
	digest = testenv.Push(t, testImage(t, "amd64", demoFiles, nil, "/usr/local/bin/demo"), image)
	return host, image, digest, newOptions(t, fmt.Sprintf("models:\n  - {name: demo, image: %q}\n", image), nil)
}
