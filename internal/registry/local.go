package registry

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/scivision-hpc/scv-hpc/internal/tarsafe"
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
	if err := checkLayoutFile(ref, filepath.Join(r.Path, "index.json"), -1, true); err != nil {
		return nil, err
	}
	idx, err := layout.ImageIndexFromPath(r.Path)
	if err != nil {
		return nil, fmt.Errorf("open %s: read OCI layout %s: %w", ref, r.Path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("open %s: read %s: %w", ref, filepath.Join(r.Path, "index.json"), err)
	}
	if err := checkLayoutIndex(ref, r.Path, im); err != nil {
		return nil, err
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
		cim, err := child.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", ref, err)
		}
		if err := checkLayoutIndex(ref, r.Path, cim); err != nil {
			return nil, err
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

// MaxJSONSize bounds the JSON documents of an image (an index, a manifest, a
// configuration), each read whole into memory: a few KiB in practice, and well under
// 1 MiB for a configuration with a history of hundreds of layers.
const MaxJSONSize = 16 << 20

// openArchive opens the single image of a 'docker save' archive.
func openArchive(ref string, r Reference, _ v1.Platform) (v1.Image, error) {
	if _, err := os.Stat(r.Path); err != nil {
		return nil, newError(ErrNotFound, ref, err, "image %s not found: %v", ref, err)
	}
	if err := scanArchive(ref, r.Path); err != nil {
		return nil, err
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

// scanArchive reads the member headers of a 'docker save' archive before
// go-containerregistry reads any member whole (it reads the configuration into memory,
// and a layer to its end): a sparse member, whose holes would read as terabytes of
// zeros, is refused (tarsafe.Check), as is a JSON member over MaxJSONSize.
func scanArchive(ref, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return newError(ErrNotFound, ref, err, "image %s not found: %v", ref, err)
	}
	defer f.Close()
	tr := tar.NewReader(f) // skips member contents by seeking
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("open %s: read docker archive %s: %w", ref, path, err)
		}
		if err := tarsafe.Check(h); err != nil {
			return newError(ErrBadImage, ref, err, "docker archive %s: member %v", path, err)
		}
		if strings.HasSuffix(h.Name, ".json") && h.Size > MaxJSONSize {
			return newError(ErrBadImage, ref, nil, "docker archive %s: member %q is %d bytes, over the %d a configuration may have",
				path, h.Name, h.Size, MaxJSONSize)
		}
	}
}

// checkLayoutIndex checks the blob files an index of the OCI layout at dir points to
// before go-containerregistry reads any of them whole: each is the size its descriptor
// says, and a manifest or index is at most MaxJSONSize.
func checkLayoutIndex(ref, dir string, im *v1.IndexManifest) error {
	for _, d := range im.Manifests {
		p := filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex)
		if err := checkLayoutFile(ref, p, d.Size, d.MediaType.IsImage() || d.MediaType.IsIndex()); err != nil {
			return err
		}
	}
	return nil
}

// checkLayoutFile checks that the file p of a layout is size bytes (any size for -1)
// and, for a JSON document, at most MaxJSONSize. A missing file is left to
// go-containerregistry, which reports it naming the blob.
func checkLayoutFile(ref, p string, size int64, isJSON bool) error {
	st, err := os.Stat(p)
	switch {
	case err != nil:
		return nil
	case size >= 0 && st.Size() != size:
		return newError(ErrBadImage, ref, nil, "image %s: blob %s is %d bytes, its descriptor says %d", ref, p, st.Size(), size)
	case isJSON && st.Size() > MaxJSONSize:
		return newError(ErrBadImage, ref, nil, "image %s: %s is %d bytes, over the %d an index or manifest may have", ref, p, st.Size(), MaxJSONSize)
	}
	return nil
}

// checkBlobs checks, before any of them is read, that the image's configuration is at
// most MaxJSONSize and, in an OCI layout at dir, that the files of its configuration
// and layers are the sizes their descriptors say (a file sparse on disk could be read
// as terabytes, and the configuration is read whole into memory).
func checkBlobs(ref string, img v1.Image, dir string) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("open %s: read manifest: %w", ref, err)
	}
	if m.Config.Size < 0 || m.Config.Size > MaxJSONSize {
		return newError(ErrBadImage, ref, nil, "image %s: its configuration is declared %d bytes, over the %d one may have",
			ref, m.Config.Size, MaxJSONSize)
	}
	if dir == "" {
		return nil
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if err := checkLayoutFile(ref, filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex), d.Size, false); err != nil {
			return err
		}
	}
	return nil
}
