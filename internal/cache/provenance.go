package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sylabs/sif/v2/pkg/sif"
)

// Provenance is what a SIF says about where it came from: its scv-provenance.json
// descriptor, written by the conversion (internal/sif). It lives inside the SIF, so it
// is covered by the SIF's checksum, unlike the refs and metadata a bundle carries.
type Provenance struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

const (
	provenanceName    = "scv-provenance.json"
	maxProvenanceSize = 64 << 10
)

// readProvenance returns the provenance recorded in the SIF at path, or nil when it has
// none (SIFs not made by scv-hpc). Two provenance descriptors, or one that is not
// small JSON, are an error.
func readProvenance(path string) (*Provenance, error) {
	f, st, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := loadSIF(f, st.Size())
	if err != nil {
		return nil, err
	}
	defer img.UnloadContainer()
	var found []sif.Descriptor
	img.WithDescriptors(func(d sif.Descriptor) bool {
		if d.DataType() == sif.DataGenericJSON && d.Name() == provenanceName {
			found = append(found, d)
		}
		return false
	})
	switch {
	case len(found) == 0:
		return nil, nil
	case len(found) > 1:
		return nil, fmt.Errorf("the SIF holds %d %s descriptors", len(found), provenanceName)
	case found[0].Size() > maxProvenanceSize:
		return nil, fmt.Errorf("the SIF's %s is %d bytes", provenanceName, found[0].Size())
	}
	b, err := found[0].GetData()
	if err != nil {
		return nil, fmt.Errorf("read the SIF's %s: %w", provenanceName, err)
	}
	var p Provenance
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("the SIF's %s: %v", provenanceName, err)
	}
	return &p, nil
}

// errProvenance marks a bundle entry whose SIF says it is another image.
var errProvenance = errors.New("provenance mismatch")

// checkProvenance checks a SIF's own provenance against the digest it is filed under
// and the source its metadata names.
func checkProvenance(p *Provenance, digest string, m *Meta) error {
	if p == nil {
		return nil
	}
	if p.Digest != digest {
		return fmt.Errorf("%w: the SIF says it is image %q (from %q), not %s", errProvenance, p.Digest, p.Ref, digest)
	}
	if m.Source != "" && p.Ref != "" && m.Source != p.Ref {
		return fmt.Errorf("%w: the metadata says the image came from %q, the SIF says %q", errProvenance, m.Source, p.Ref)
	}
	return nil
}

// isCatalogRef tells catalog IDs ("faces", "faces@1.0") from image references, which
// always hold a "/" or a ":" (registry/repo:tag, oci-layout:DIR, docker-archive:FILE).
func isCatalogRef(ref string) bool { return !strings.ContainsAny(ref, "/:") }

// repository returns the canonical registry/repository of an image reference and
// its digest if it is pinned; ok is false for what is not a registry reference.
func repository(ref string) (repo, digest string, ok bool) {
	if strings.HasPrefix(ref, "oci-layout:") || strings.HasPrefix(ref, "docker-archive:") {
		return "", "", false
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", "", false
	}
	if d, isDigest := r.(name.Digest); isDigest {
		digest = d.DigestStr()
	}
	return r.Context().Name(), digest, true
}

// refAgrees says why ref may not point at the entry of digest, whose SIF records
// provenance p (nil: none) and whose metadata is m; "" when it may. An image reference
// must name the repository the SIF was converted from (any tag of it; a pinned digest
// must be this one). A catalog ID is checked against the image the local catalog gives
// it (imageOf) when the catalog knows it, else against the refs the entry was first
// committed for.
func refAgrees(ref, digest string, p *Provenance, m *Meta, imageOf func(string) (string, bool)) string {
	source := m.Source
	if p != nil && p.Ref != "" {
		source = p.Ref
	}
	if isCatalogRef(ref) {
		if imageOf != nil {
			if image, ok := imageOf(ref); ok {
				if image == source || sameRepository(image, source) {
					return ""
				}
				return fmt.Sprintf("the catalog maps %s to %s, but this SIF was converted from %s", ref, image, orNone(source))
			}
		}
		for _, r := range m.Refs {
			if r == ref || (isCatalogRef(r) && strings.HasPrefix(r, ref+"@")) {
				return ""
			}
		}
		return fmt.Sprintf("the entry was not committed for %s (its refs: %s; converted from %s)", ref, orNone(strings.Join(m.Refs, ", ")), orNone(source))
	}
	if _, pinned, ok := repository(ref); ok && pinned != "" && pinned != digest {
		return fmt.Sprintf("%s pins another digest", ref)
	}
	if ref == source || sameRepository(ref, source) {
		return ""
	}
	return fmt.Sprintf("this SIF was converted from %s, not %s", orNone(source), ref)
}

// sameRepository reports whether two image references name one registry repository.
func sameRepository(a, b string) bool {
	ra, _, oka := repository(a)
	rb, _, okb := repository(b)
	return oka && okb && ra == rb
}

func orNone(s string) string {
	if s == "" {
		return "(none recorded)"
	}
	return s
}
