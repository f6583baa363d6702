// Command benchpush pushes the only (or the "latest") image of an OCI layout
// to a registry reference: the conversion benchmark's loopback registry.
//
// Usage: go run ./scripts/benchpush LAYOUT_DIR REF [NOTE]
//
// With NOTE, one more layer holding /opt/scv/note.txt (NOTE) is added on top:
// a second model on the same base layers.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: benchpush LAYOUT_DIR REF [NOTE]")
		os.Exit(2)
	}
	note := ""
	if len(os.Args) == 4 {
		note = os.Args[3]
	}
	if err := push(os.Args[1], os.Args[2], note); err != nil {
		fmt.Fprintln(os.Stderr, "benchpush:", err)
		os.Exit(1)
	}
}

func push(dir, ref, note string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(m.Manifests) == 0 {
		return fmt.Errorf("%s holds no image", dir)
	}
	d := m.Manifests[0].Digest
	for _, desc := range m.Manifests {
		if desc.Annotations["org.opencontainers.image.ref.name"] == "latest" {
			d = desc.Digest
		}
	}
	img, err := p.Image(d)
	if err != nil {
		return err
	}
	if note != "" {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(&tar.Header{Name: "opt/scv/note.txt", Mode: 0o644, Size: int64(len(note)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(note)); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		data := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return err
		}
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}
