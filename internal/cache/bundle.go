package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// A bundle is one tar that carries cache entries to an air-gapped site:
//
//	index.json                 bundleIndex: every file's size and sha256, and the refs
//	sif/sha256/<hex>.json      the entry's Meta, as stored in the cache
//	sif/sha256/<hex>.sif       the SIF
//
// Member names in the tar are only matched against the index, never used as paths.

// BundleFormat identifies the bundle layout in index.json.
const BundleFormat = "scv-hpc-cache-bundle/1"

const (
	indexName    = "index.json"
	maxIndexSize = 64 << 20
	maxMetaSize  = 16 << 20
)

// ErrBadBundle reports a bundle (or some of its entries) that failed verification.
var ErrBadBundle = errors.New("bad bundle")

// ErrRefRefused reports refs of a bundle that Import did not set (ImportReport.Refused).
var ErrRefRefused = errors.New("bundle refs refused")

// BundleIndex is the first member of a bundle.
type BundleIndex struct {
	Format  string            `json:"format"`
	Tool    string            `json:"tool,omitempty"`
	Created time.Time         `json:"created"`
	Entries []BundleEntry     `json:"entries"`
	Refs    map[string]string `json:"refs,omitempty"`
}

// BundleEntry is one cache entry in a bundle.
type BundleEntry struct {
	Digest string `json:"digest"`
	// Meta and SIF describe the entry's two files.
	Meta BundleFile `json:"meta"`
	SIF  BundleFile `json:"sif"`
}

// BundleFile is one file of a bundle with its checksum.
type BundleFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func bundleNames(hex string) (meta, sif string) {
	return "sif/sha256/" + hex + ".json", "sif/sha256/" + hex + ".sif"
}

// ParseBundleIndex parses and checks index.json of a bundle, which comes from
// outside: sizes are bounded, digests and names must be exactly what Export writes,
// and refs must point at entries of the bundle.
func ParseBundleIndex(b []byte) (*BundleIndex, error) {
	if len(b) > maxIndexSize {
		return nil, fmt.Errorf("%w: index.json is larger than %d bytes", ErrBadBundle, maxIndexSize)
	}
	var ix BundleIndex
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("%w: index.json: %v", ErrBadBundle, err)
	}
	if ix.Format != BundleFormat {
		return nil, fmt.Errorf("%w: index.json: format %q, want %q (made by another scv-hpc version?)", ErrBadBundle, ix.Format, BundleFormat)
	}
	seen := map[string]bool{}
	for i, e := range ix.Entries {
		hex, err := ParseDigest(e.Digest)
		if err != nil {
			return nil, fmt.Errorf("%w: index.json entry %d: %v", ErrBadBundle, i, err)
		}
		if seen[e.Digest] {
			return nil, fmt.Errorf("%w: index.json: %s listed twice", ErrBadBundle, e.Digest)
		}
		seen[e.Digest] = true
		mn, sn := bundleNames(hex)
		for _, f := range []struct {
			got  BundleFile
			want string
		}{{e.Meta, mn}, {e.SIF, sn}} {
			if f.got.Name != f.want || f.got.Size < 0 || !isHex64(f.got.SHA256) {
				return nil, fmt.Errorf("%w: index.json: %s: file %q: want name %q, a size and a sha256", ErrBadBundle, e.Digest, f.got.Name, f.want)
			}
		}
		if e.Meta.Size > maxMetaSize {
			return nil, fmt.Errorf("%w: index.json: %s: metadata of %d bytes", ErrBadBundle, e.Digest, e.Meta.Size)
		}
	}
	for ref, d := range ix.Refs {
		if _, err := escapeRef(ref); err != nil {
			return nil, fmt.Errorf("%w: index.json: %v", ErrBadBundle, err)
		}
		if !seen[d] {
			return nil, fmt.Errorf("%w: index.json: ref %s points to %q, which the bundle does not carry", ErrBadBundle, ref, d)
		}
	}
	return &ix, nil
}

// ImportFailure is an entry of a bundle that was not imported, and why.
type ImportFailure struct {
	Digest string `json:"digest"`
	Err    string `json:"error"`
}

// ImportReport says what Import did.
type ImportReport struct {
	// Imported are the entries committed from the bundle.
	Imported []string `json:"imported"`
	// Present are the entries the cache already had (their data was skipped).
	Present []string `json:"present"`
	// Failed are the entries that failed verification; nothing of them was kept.
	Failed []ImportFailure `json:"failed,omitempty"`
	// Refs are the refs of the bundle that now point at its entries.
	Refs []string `json:"refs,omitempty"`
	// Refused are the refs of the bundle that were not set, and why.
	Refused []RefusedRef `json:"refused,omitempty"`
	// Moved are the refs that pointed at another digest and were moved (Force only).
	Moved []MovedRef `json:"moved,omitempty"`
}

// RefusedRef is a ref of a bundle that Import did not set.
type RefusedRef struct {
	Ref string `json:"ref"`
	// Digest is what the bundle maps it to.
	Digest string `json:"digest"`
	// Current is what this cache maps it to, when that is why it was refused.
	Current string `json:"current,omitempty"`
	Reason  string `json:"reason"`
}

// MovedRef is a ref Import moved from one digest to another (ImportOptions.Force).
type MovedRef struct {
	Ref  string `json:"ref"`
	From string `json:"from"`
	To   string `json:"to"`
}

// err summarises the failures, naming each bad entry and each refused ref.
func (r *ImportReport) err() error {
	return errors.Join(r.failedErr(), r.refusedErr())
}

func (r *ImportReport) refusedErr() error {
	if len(r.Refused) == 0 {
		return nil
	}
	var b strings.Builder
	for i, f := range r.Refused {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s -> %s: %s", f.Ref, f.Digest, f.Reason)
	}
	return fmt.Errorf("%w: %d not set: %s", ErrRefRefused, len(r.Refused), b.String())
}

func (r *ImportReport) failedErr() error {
	if len(r.Failed) == 0 {
		return nil
	}
	var b strings.Builder
	for i, f := range r.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: %s", f.Digest, f.Err)
	}
	n := fmt.Sprintf("%d entries", len(r.Failed))
	if len(r.Failed) == 1 {
		n = "1 entry"
	}
	return fmt.Errorf("%w: %s not imported: %s", ErrBadBundle, n, b.String())
}

func (r *ImportReport) sort() {
	sort.Strings(r.Imported)
	sort.Strings(r.Present)
	sort.Strings(r.Refs)
	sort.Slice(r.Failed, func(i, j int) bool { return r.Failed[i].Digest < r.Failed[j].Digest })
	sort.Slice(r.Refused, func(i, j int) bool { return r.Refused[i].Ref < r.Refused[j].Ref })
	sort.Slice(r.Moved, func(i, j int) bool { return r.Moved[i].Ref < r.Moved[j].Ref })
}

// parseBundleMeta checks an entry's metadata file against the index.
func parseBundleMeta(e BundleEntry, b []byte) (*Meta, error) {
	sum, n, _ := hashReader(bytes.NewReader(b))
	if n != e.Meta.Size || sum != e.Meta.SHA256 {
		return nil, fmt.Errorf("metadata checksum mismatch (sha256 %s, index says %s)", sum, e.Meta.SHA256)
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("metadata: %v", err)
	}
	if m.Digest != e.Digest {
		return nil, fmt.Errorf("metadata names %q", m.Digest)
	}
	if m.SIFSHA256 != e.SIF.SHA256 || m.Size != e.SIF.Size {
		return nil, fmt.Errorf("metadata and index disagree on the SIF")
	}
	return &m, nil
}
