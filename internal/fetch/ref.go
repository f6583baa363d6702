package fetch

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// Kind says what a MODEL argument named.
type Kind int

// The kinds of MODEL arguments, in the order Parse tries them.
const (
	// KindSIF is a path to a .sif file, used as is.
	KindSIF Kind = iota + 1
	// KindLocal is oci-layout:DIR[:TAG] or docker-archive:FILE.
	KindLocal
	// KindDigest is repo@sha256:… or catalog-name@sha256:… (a pin).
	KindDigest
	// KindCatalog is a catalog name or name@version.
	KindCatalog
	// KindImage is a registry reference such as registry.example/org/model:tag.
	KindImage
)

func (k Kind) String() string {
	switch k {
	case KindSIF:
		return "sif"
	case KindLocal:
		return "local"
	case KindDigest:
		return "digest"
	case KindCatalog:
		return "catalog"
	case KindImage:
		return "image"
	}
	return "unknown"
}

// Target is a parsed MODEL argument.
type Target struct {
	// Input is the argument as given.
	Input string
	Kind  Kind
	// Entry is the catalog entry, for catalog names and catalog-name@sha256 pins.
	Entry *catalog.Entry
	// Image is the image source to open: a registry reference (a digest reference
	// for pins) or an oci-layout:/docker-archive: source. Empty for KindSIF.
	Image string
	// Digest is the pinned manifest digest (KindDigest only).
	Digest string
	// SIF is the file's path (KindSIF only).
	SIF string
}

// Name is the model's display name: the catalog ID when there is one, else Input.
func (t *Target) Name() string {
	if t.Entry != nil {
		return t.Entry.ID()
	}
	return t.Input
}

// Parse classifies a MODEL argument: a .sif file, an oci-layout:/docker-archive:
// source, a digest pin (catalog name or repository, then @sha256:…), a catalog name
// or name@version, or a registry reference. A bare word that is not in the catalog is
// an error (it would otherwise silently mean an image on Docker Hub).
func Parse(model string, cat *catalog.Catalog) (*Target, error) {
	t := &Target{Input: model}
	switch {
	case strings.TrimSpace(model) == "":
		return nil, errors.New("empty model name: give a catalog name, an image reference or a .sif file")
	case strings.HasSuffix(model, ".sif"):
		st, err := os.Stat(model)
		if err != nil {
			return nil, fmt.Errorf("model %s: %w (a .sif argument is used as is; check the path)", model, err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("model %s: not a regular file", model)
		}
		t.Kind, t.SIF = KindSIF, model
		return t, nil
	case registry.IsLocal(model):
		if err := catalog.ValidateImage(model); err != nil {
			return nil, fmt.Errorf("model %s: %w", model, err)
		}
		t.Kind, t.Image = KindLocal, model
		return t, nil
	}
	if base, dig, ok := strings.Cut(model, "@sha256:"); ok {
		t.Kind, t.Digest = KindDigest, "sha256:"+dig
		if cat != nil && cat.Has(base) {
			e, err := cat.Lookup(base)
			if err != nil {
				return nil, err
			}
			t.Entry = e
			if registry.IsLocal(e.Image) {
				t.Image = e.Image // resolved by digest from the cache, or checked after opening
			} else {
				repo, err := repository(e.Image)
				if err != nil {
					return nil, fmt.Errorf("model %s: catalog image: %w", model, err)
				}
				t.Image = repo + "@" + t.Digest
			}
		} else {
			t.Image = model
		}
		if _, err := name.NewDigest(t.Image); err != nil && t.Entry == nil {
			return nil, fmt.Errorf("model %s: not a valid digest reference: %w", model, err)
		}
		return t, nil
	}
	base, _, _ := strings.Cut(model, "@")
	if cat != nil && cat.Has(base) {
		e, err := cat.Lookup(model)
		if err != nil {
			return nil, err
		}
		t.Kind, t.Entry, t.Image = KindCatalog, e, e.Image
		return t, nil
	}
	if !strings.ContainsAny(model, "/:.") {
		if cat != nil {
			_, err := cat.Lookup(model)
			return nil, err
		}
		return nil, fmt.Errorf("model %q is %w", model, catalog.ErrUnknown)
	}
	if _, err := name.ParseReference(model); err != nil {
		return nil, fmt.Errorf("model %s: not a catalog name, a .sif file or a valid image reference: %w", model, err)
	}
	// Kept as typed: it is also the ref recorded in the cache for offline lookups.
	t.Kind, t.Image = KindImage, model
	return t, nil
}

// repository returns the repository part of an image reference (no tag or digest).
func repository(image string) (string, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", err
	}
	return ref.Context().String(), nil
}
