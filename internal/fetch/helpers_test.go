package fetch

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
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

// testImage builds a one-layer image holding files (path → content), for arch.
func testImage(t *testing.T, arch string, files map[string]string, labels map[string]string, entrypoint ...string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for p, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Labels = labels
	cf.Config.Entrypoint = entrypoint
	cf.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func push(t *testing.T, img v1.Image, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
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

var demoFiles = map[string]string{
	"usr/local/bin/demo": "#!/bin/sh\necho demo\n",
	"etc/demo.conf":      "threshold=0.5\n",
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	return t.Context()
}
