package fetch

import (
	"errors"
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
)

// Cached finds a parsed target in the cache alone: no network, no lock, no write, so
// it works on a read-only cache. A digest pin is looked up by digest; anything else
// through the refs recorded when it was pulled: the image reference first (it follows
// a catalog that now points elsewhere), then the catalog ID, then the input as typed.
// A target that is not cached is an error wrapping cache.ErrNotCached.
func Cached(c *cache.Cache, t *Target) (digest, sifPath string, meta *cache.Meta, err error) {
	if t.Kind == KindSIF {
		return "", "", nil, fmt.Errorf("model %s: a .sif file is not looked up in the cache", t.Input)
	}
	if t.Kind == KindDigest {
		p, m, err := c.Lookup(t.Digest)
		return t.Digest, p, m, err
	}
	var firstErr error
	for _, ref := range candidateRefs(t) {
		d, err := c.ResolveRef(ref)
		if err != nil {
			if firstErr == nil || !errors.Is(err, cache.ErrNotCached) {
				firstErr = err
			}
			continue
		}
		p, m, err := c.Lookup(d)
		if err != nil {
			// A ref to an entry that was removed: try the next ref, report this one.
			if firstErr == nil || errors.Is(firstErr, cache.ErrNotCached) {
				firstErr = err
			}
			continue
		}
		return d, p, m, nil
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("model %s: %w", t.Input, cache.ErrNotCached)
	}
	return "", "", nil, firstErr
}

// candidateRefs are the refs a target may have been recorded under, best first.
func candidateRefs(t *Target) []string {
	var refs []string
	add := func(r string) {
		for _, x := range refs {
			if x == r {
				return
			}
		}
		if r != "" {
			refs = append(refs, r)
		}
	}
	add(t.Image)
	if t.Entry != nil {
		add(t.Entry.ID())
	}
	add(t.Input)
	return refs
}

// recordRefs are the refs written after a successful fetch: the image reference and
// the catalog ID (and for a catalog name given without a version, the bare name too).
func recordRefs(t *Target) []string {
	var refs []string
	if t.Kind != KindDigest && t.Image != "" {
		refs = append(refs, t.Image)
	}
	if t.Entry != nil {
		refs = append(refs, t.Entry.ID())
		if t.Entry.Version != "" && t.Input == t.Entry.Name {
			refs = append(refs, t.Entry.Name)
		}
	}
	if t.Kind == KindImage && t.Input != t.Image {
		refs = append(refs, t.Input)
	}
	return refs
}
