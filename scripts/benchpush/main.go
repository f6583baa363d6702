// Command benchpush pushes the only (or the "latest") image of an OCI layout
// to a registry reference: the conversion benchmark's loopback registry.
//
// Usage: go run ./scripts/benchpush LAYOUT_DIR REF
package main

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: benchpush LAYOUT_DIR REF")
		os.Exit(2)
	}
	if err := push(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "benchpush:", err)
		os.Exit(1)
	}
}

func push(dir, ref string) error {
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
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}
