package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// rawManifest is a manifest pushed as given.
type rawManifest struct{ b []byte }

func (m rawManifest) RawManifest() ([]byte, error) { return m.b, nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}

// archiveOf returns a 'docker save' archive whose manifest.json names the
// configuration config and the layer l.tar, followed by the given member blocks
// (testenv.TarBlock, SparseEntry).
func archiveOf(config string, members ...[]byte) []byte {
	m := []byte(`[{"Config":"` + config + `","RepoTags":["x:1"],"Layers":["l.tar"]}]`)
	b := testenv.TarBlock("manifest.json", '0', int64(len(m)))
	b = append(b, append(m, make([]byte, 512-len(m))...)...)
	for _, mb := range members {
		b = append(b, mb...)
	}
	return append(b, make([]byte, 1024)...)
}

// TestOpenMalformedImages: an image whose own files would make reading it unbounded is
// refused when it is opened, with ErrBadImage naming what is wrong, before anything is
// read whole: no memory is exhausted, nothing runs for hours.
func TestOpenMalformedImages(t *testing.T) {
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	configBlock := append(testenv.TarBlock("c.json", '0', int64(len(config))), append(config, make([]byte, 512-len(config))...)...)

	img := platformImage(t, "linux", "amd64", 1)

	// layoutWith returns a layout of img with one file of it grown to 1 TiB, sparse on
	// disk: the file rel, or the blob of the image's manifest or configuration for
	// "manifest" and "config" (declared as their real sizes).
	layoutWith := func(t *testing.T, rel string) string {
		dir := filepath.Join(t.TempDir(), "layout")
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
		var d v1.Hash
		switch rel {
		case "manifest":
			d, err = img.Digest()
		case "config":
			d, err = img.ConfigName()
		}
		if err != nil {
			t.Fatal(err)
		}
		if d.Hex != "" {
			rel = filepath.Join("blobs", d.Algorithm, d.Hex)
		}
		if err := os.Truncate(filepath.Join(dir, rel), 1<<40); err != nil {
			t.Fatal(err)
		}
		return "oci-layout:" + dir
	}

	// A registry manifest that declares a configuration of 64 GiB.
	host := startRegistry(t, nil)
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m = m.DeepCopy()
	m.Config.Size = 64 << 30
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(mustRef(t, host+"/bad/config:1"), rawManifest{mb}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		ref     func(t *testing.T) string
		wantIs  error
		wantMsg string
	}{
		{"docker archive, configuration a sparse file of 64 GiB", func(t *testing.T) string {
			return "docker-archive:" + writeFile(t, archiveOf("c.json", testenv.SparseEntry("c.json", 64<<30)))
		}, tarsafe.ErrSparse, `member "c.json": sparse file`},
		{"docker archive, layer a sparse file of 1 TiB", func(t *testing.T) string {
			return "docker-archive:" + writeFile(t, archiveOf("c.json", configBlock, testenv.SparseEntry("l.tar", 1<<40)))
		}, tarsafe.ErrSparse, `member "l.tar": sparse file`},
		{"docker archive, configuration of 17 MiB", func(t *testing.T) string {
			big := append(testenv.TarBlock("c.json", '0', 17<<20), make([]byte, 17<<20)...)
			return "docker-archive:" + writeFile(t, archiveOf("c.json", big))
		}, registry.ErrBadImage, `member "c.json" is 17825792 bytes`},
		{"docker archive of Docker 25, configuration of 17 MiB", func(t *testing.T) string {
			name := "blobs/sha256/" + strings.Repeat("c", 64)
			big := append(testenv.TarBlock(name, '0', 17<<20), make([]byte, 17<<20)...)
			return "docker-archive:" + writeFile(t, archiveOf(name, big))
		}, registry.ErrBadImage, `member "blobs/sha256/cccc`},
		{"docker archive, configuration a link to a member of 17 MiB", func(t *testing.T) string {
			link := testenv.TarBlock("c.json", '2', 0)
			copy(link[157:], "big") // the link's target
			fixSum(link)
			big := append(testenv.TarBlock("big", '0', 17<<20), make([]byte, 17<<20)...)
			return "docker-archive:" + writeFile(t, archiveOf("c.json", link, big))
		}, registry.ErrBadImage, `member "big" is 17825792 bytes`},
		{"layout, configuration file of 1 TiB sparse on disk", func(t *testing.T) string {
			return layoutWith(t, "config")
		}, registry.ErrBadImage, "is 1099511627776 bytes, its descriptor says"},
		{"layout, index.json a file of 1 TiB sparse on disk", func(t *testing.T) string {
			return layoutWith(t, "index.json")
		}, registry.ErrBadImage, "index.json is 1099511627776 bytes, over the 16777216"},
		{"layout, manifest a file of 1 TiB sparse on disk", func(t *testing.T) string {
			return layoutWith(t, "manifest")
		}, registry.ErrBadImage, "is 1099511627776 bytes, its descriptor says"},
		{"registry, configuration declared 64 GiB", func(t *testing.T) string {
			return host + "/bad/config:1"
		}, registry.ErrBadImage, "configuration is declared 68719476736 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := registry.Open(context.Background(), tt.ref(t), fastOptions())
			if !errors.Is(err, registry.ErrBadImage) || !errors.Is(err, tt.wantIs) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Open: %v\nwant ErrBadImage and %v, saying %q", err, tt.wantIs, tt.wantMsg)
			}
		})
	}
}

// fixSum sets the checksum of a ustar header block edited after TarBlock.
func fixSum(b []byte) {
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestOpenLayoutBrokenNeighbour: a broken image in an OCI layout does not stop
// another image of it from opening; opening the broken one fails with ErrBadImage.
func TestOpenLayoutBrokenNeighbour(t *testing.T) {
	good, bad := platformImage(t, "linux", "amd64", 1), platformImage(t, "linux", "amd64", 2)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for tag, img := range map[string]v1.Image{"a": good, "b": bad} {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{registry.RefNameAnnotation: tag})); err != nil {
			t.Fatal(err)
		}
	}
	d, err := bad.Digest()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "blobs", d.Algorithm, d.Hex), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(" ")
	f.Close()
	if _, src, err := registry.Open(context.Background(), "oci-layout:"+dir+":a", fastOptions()); err != nil || src.Digest != digestOf(t, good) {
		t.Errorf("open a: %v, %v; want the good image", src, err)
	}
	if _, _, err := registry.Open(context.Background(), "oci-layout:"+dir+":b", fastOptions()); !errors.Is(err, registry.ErrBadImage) {
		t.Errorf("open b: %v, want ErrBadImage", err)
	}
}
