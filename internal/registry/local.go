package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefNameAnnotation holds an image's tag in an OCI layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// openLayout opens an image of an OCI image layout, by tag, by digest, or the only one.
func openLayout(ref string, r Reference, plat v1.Platform) (v1.Image, error) {
	if _, err := os.Stat(filepath.Join(r.Path, "index.json")); err != nil {
		e := newError(ErrNotFound, ref, err, "image %s not found: %s is not an OCI image layout (no index.json)", ref, r.Path)
		e.Reason = ErrNotLayout
		return nil, e
	}
	idx, err := layout.ImageIndexFromPath(r.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: read OCI layout %s: %w", ref, r.Path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("open %s: read %s: %w", ref, filepath.Join(r.Path, "index.json"), err)
	}
	var pick *v1.Descriptor
	var tags []string
	for i, d := range im.Manifests {
		tag := d.Annotations[RefNameAnnotation]
		if tag != "" {
			tags = append(tags, tag)
		}
		switch {
		case r.Digest != "" && d.Digest.String() == r.Digest,
			r.Tag != "" && (tag == r.Tag || strings.HasSuffix(tag, ":"+r.Tag)):
			pick = &im.Manifests[i]
		}
		if pick != nil {
			break
		}
	}
	sort.Strings(tags)
	switch {
	case pick != nil:
	case r.Tag != "" || r.Digest != "":
		want := r.Tag
		if want == "" {
			want = r.Digest
		}
		return nil, newError(ErrNotFound, ref, nil,
			"image %s not found: layout %s has no image %s; it has tags: %s", ref, r.Path, want, listOrNone(tags))
	case len(im.Manifests) == 1:
		pick = &im.Manifests[0]
	case len(im.Manifests) == 0:
		return nil, newError(ErrNotFound, ref, nil, "image %s not found: layout %s is empty", ref, r.Path)
	default:
		// Several images: a multi-platform set picks by platform, anything else is ambiguous.
		if img, err := selectPlatform(idx, plat, ref); err == nil || !errors.Is(err, ErrNoPlatform) || len(tags) == 0 {
			return img, err
		}
		return nil, newError(ErrBadReference, ref, nil,
			"layout %s holds %d images; name one as oci-layout:%s:TAG (tags: %s)", r.Path, len(im.Manifests), r.Path, listOrNone(tags))
	}
	if pick.MediaType.IsIndex() {
		child, err := idx.ImageIndex(pick.Digest)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", ref, err)
		}
		return selectPlatform(child, plat, ref)
	}
	img, err := idx.Image(pick.Digest)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", ref, err)
	}
	return img, nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// openArchive opens the single image of a 'docker save' archive.
func openArchive(ref string, r Reference, _ v1.Platform) (v1.Image, error) {
	if _, err := os.Stat(r.Path); err != nil {
		return nil, newError(ErrNotFound, ref, err, "image %s not found: %v", ref, err)
	}
	img, err := tarball.ImageFromPath(r.Path, nil)
	if err != nil {
		if strings.Contains(err.Error(), "single image") {
			return nil, newError(ErrBadReference, ref, err,
				"archive %s holds several images; save one image per archive (docker save IMAGE -o FILE)", r.Path)
		}
		return nil, fmt.Errorf("open %s: read docker archive %s: %w", ref, r.Path, err)
	}
	// Touch the manifest now so a corrupt archive fails here, naming the file.
	if _, err := img.Manifest(); err != nil {
		return nil, fmt.Errorf("open %s: read docker archive %s: %w", ref, r.Path, err)
	}
	return img, nil
}
