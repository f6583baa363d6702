package registry

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	pathpkg "path"
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
	// Only what is read is checked: another image of the layout may be broken.
	check := func(d v1.Descriptor) error {
		return checkLayoutFile(ref, filepath.Join(r.Path, "blobs", d.Digest.Algorithm, d.Digest.Hex), d.Size, true)
	}
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
		if img, err := selectPlatform(idx, plat, ref, check); err == nil || !errors.Is(err, ErrNoPlatform) || len(tags) == 0 {
			return img, err
		}
		return nil, newError(ErrBadReference, ref, nil,
			"layout %s holds %d images; name one as oci-layout:%s:TAG (tags: %s)", r.Path, len(im.Manifests), r.Path, listOrNone(tags))
	}
	if err := check(*pick); err != nil {
		return nil, err
	}
	if pick.MediaType.IsIndex() {
		child, err := idx.ImageIndex(pick.Digest)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", ref, err)
		}
		return selectPlatform(child, plat, ref, check)
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

// scanArchive reads the member headers of a 'docker save' archive, and its
// manifest.json, before go-containerregistry reads any member whole (it reads the
// configuration into memory, and a layer to its end): a sparse member, whose holes
// would read as terabytes of zeros, is refused (tarsafe.Check), as is a JSON member or
// an image's configuration (blobs/sha256/HEX in archives of Docker 25 and later,
// through links as go-containerregistry follows them) over MaxJSONSize.
func scanArchive(ref, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", ref, err)
	}
	defer f.Close()
	members := map[string]*tar.Header{}
	var manifest []struct{ Config string }
	tr := tar.NewReader(f) // skips member contents by seeking
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("open %s: read docker archive %s: %w", ref, path, err)
		}
		if err := tarsafe.Check(h); err != nil {
			return newError(ErrBadImage, ref, err, "docker archive %s: member %v", path, err)
		}
		if strings.HasSuffix(h.Name, ".json") && h.Size > MaxJSONSize {
			return tooBig(ref, path, h)
		}
		name := pathpkg.Clean(h.Name)
		members[name] = h
		if name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				return fmt.Errorf("open %s: read docker archive %s: manifest.json: %w", ref, path, err)
			}
		}
	}
	for _, m := range manifest {
		name := pathpkg.Clean(m.Config)
		for hops := 0; hops < 16; hops++ {
			h := members[name]
			if h == nil || (h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeLink) {
				break
			}
			name = pathpkg.Join(pathpkg.Dir(name), pathpkg.Clean(h.Linkname))
		}
		if h := members[name]; h != nil && h.Size > MaxJSONSize {
			return tooBig(ref, path, h)
		}
	}
	return nil
}

// tooBig is the error of an archive member too big for an image's JSON document.
func tooBig(ref, path string, h *tar.Header) error {
	return newError(ErrBadImage, ref, nil, "docker archive %s: member %s is %d bytes, over the %d a configuration may have",
		path, tarsafe.Quote(h.Name), h.Size, MaxJSONSize)
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
