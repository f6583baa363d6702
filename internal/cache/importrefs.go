package cache

import (
	"errors"
	"fmt"
	"sort"
)

// ImportOptions tune Import. The zero value refuses every ref that would move.
type ImportOptions struct {
	// Force lets the bundle move refs that point at another digest in this cache; each
	// move is listed in ImportReport.Moved (old and new digest). Default false: such
	// refs are refused. Force never sets a ref that disagrees with the SIF's provenance.
	Force bool
	// ImageOf gives the image reference the local catalog maps a catalog ID
	// ("faces", "faces@1.0") to; ok is false for IDs it does not know. When set, a
	// catalog ID of the bundle must point at a SIF converted from that image's
	// repository. Default nil: catalog IDs are checked against the refs the entry was
	// committed for only.
	ImageOf func(id string) (image string, ok bool)
}

// importRefs sets the bundle's refs whose entries are now cached and whose SIFs agree
// with them, and refuses the others (see Import).
func (c *Cache) importRefs(ix *BundleIndex, rep *ImportReport, opts ImportOptions) error {
	refs := make([]string, 0, len(ix.Refs))
	for ref := range ix.Refs {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	provs := map[string]*Provenance{}
	provErrs := map[string]error{}
	for _, ref := range refs {
		d := ix.Refs[ref]
		refuse := func(current, format string, args ...any) {
			rep.Refused = append(rep.Refused, RefusedRef{Ref: ref, Digest: d, Current: current, Reason: fmt.Sprintf(format, args...)})
		}
		sifPath, m, err := c.Lookup(d)
		if err != nil {
			refuse("", "its entry is not in the cache (not imported)")
			continue
		}
		if _, seen := provs[d]; !seen && provErrs[d] == nil {
			provs[d], provErrs[d] = readProvenance(sifPath)
		}
		if err := provErrs[d]; err != nil {
			refuse("", "cannot read the provenance of its SIF: %v", err)
			continue
		}
		if why := refAgrees(ref, d, provs[d], m, opts.ImageOf); why != "" {
			refuse("", "%s", why)
			continue
		}
		cur, err := c.ResolveRef(ref)
		switch {
		case err == nil && cur == d:
			rep.Refs = append(rep.Refs, ref)
			continue // already there: no write, so a read-only cache imports what it has
		case err != nil && errors.Is(err, ErrNotCached):
		case err != nil && errors.Is(err, ErrCorrupt):
			cur = "(unreadable)"
			fallthrough
		case err == nil:
			if !opts.Force {
				refuse(cur, "this cache maps it to %s already; a bundle does not move it unless forced", cur)
				continue
			}
			rep.Moved = append(rep.Moved, MovedRef{Ref: ref, From: cur, To: d})
		default:
			return err
		}
		if err := c.SetRef(ref, d); err != nil {
			return err
		}
		rep.Refs = append(rep.Refs, ref)
	}
	return nil
}
