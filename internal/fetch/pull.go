package fetch

import (
	"context"
	"errors"
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
)

// ErrForceOffline: converting again needs the source, which offline forbids.
var ErrForceOffline = errors.New("converting again reads the image source, which offline mode forbids")

// ErrNotAnEntry: a .sif file given where a cache entry is meant.
var ErrNotAnEntry = errors.New("is a file, not a cache entry")

// Pull is Ensure, and with force it first removes the model's cached entry (if any) so
// that the image is fetched and converted again.
func Pull(ctx context.Context, model string, o Options, force bool) (*Model, error) {
	if force {
		if o.Offline {
			return nil, fmt.Errorf("model %s: %w", model, ErrForceOffline)
		}
		if digest, err := CachedDigest(o, model); err == nil { // not cached: nothing to remove
			if err := o.Cache.Remove(digest); err != nil && !errors.Is(err, cache.ErrNotCached) {
				return nil, fmt.Errorf("model %s: remove the cached entry: %w", model, err)
			}
		}
	}
	return Ensure(ctx, model, o)
}

// CachedDigest resolves a MODEL, or a sha256 digest given as is, to the digest of its
// cache entry, from the cache alone.
func CachedDigest(o Options, model string) (string, error) {
	if _, err := cache.ParseDigest(model); err == nil {
		return model, nil
	}
	t, err := Parse(model, o.Catalog)
	if err != nil {
		return "", err
	}
	if t.Kind == KindSIF {
		return "", fmt.Errorf("%s %w", model, ErrNotAnEntry)
	}
	d, _, _, err := Cached(o.Cache, t)
	if err != nil {
		return "", fmt.Errorf("model %s: %w", model, err)
	}
	return d, nil
}
