package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/alitto/pond/v2"

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

// CachedDigests is CachedDigest of each of models, in order; the first that fails
// stops it, its error explained by explain(model, err) (the command's hint).
func CachedDigests(o Options, models []string, explain func(model string, err error) error) ([]string, error) {
	var digests []string
	for _, m := range models {
		d, err := CachedDigest(o, m)
		if err != nil {
			return nil, explain(m, err)
		}
		digests = append(digests, d)
	}
	return digests, nil
}

// Export writes the bundle of models' cache entries (CachedDigests, each failure
// explained by explain; no models: every entry) to path, or to stdout for "-"
// (cache.Cache.ExportTo), and returns the bundle's size (0 for stdout).
func Export(ctx context.Context, o Options, path string, stdout io.Writer, models []string, explain func(model string, err error) error) (int64, error) {
	digests, err := CachedDigests(o, models, explain)
	if err != nil {
		return 0, err
	}
	return o.Cache.ExportTo(ctx, path, stdout, digests)
}

// Remove removes the cache entry of each of models (a MODEL or a sha256 digest:
// CachedDigest) and its refs, each on its own: removed hears of each one removed, and
// the errors of the others, each explained by explain(model, err), are joined.
func Remove(o Options, models []string, explain func(model string, err error) error, removed func(model, digest string)) error {
	var errs []error
	for _, m := range models {
		d, err := CachedDigest(o, m)
		if err != nil {
			errs = append(errs, explain(m, err))
			continue
		}
		if err := o.Cache.Remove(d); err != nil {
			errs = append(errs, fmt.Errorf("rm %s: %w", m, err))
			continue
		}
		removed(m, d)
	}
	return errors.Join(errs...)
}

// PullResult is the outcome of one model of PullAll: its SIF, or why not.
type PullResult struct {
	Model *Model
	Err   error
}

// PullAll pulls models (Pull, with force), jobs at a time (at least 1). done, when
// set, hears of each model as it ends (from several goroutines at once). A model never
// started because ctx ended gets ctx's error: every model has a result.
func PullAll(ctx context.Context, models []string, o Options, jobs int, force bool, done func(i int, r PullResult)) []PullResult {
	res := make([]PullResult, len(models))
	started := make([]bool, len(models))
	pool := pond.NewPool(max(jobs, 1), pond.WithContext(ctx))
	for i, m := range models {
		pool.Submit(func() {
			started[i] = true
			mod, err := Pull(ctx, m, o, force)
			res[i] = PullResult{Model: mod, Err: err}
			if done != nil {
				done(i, res[i])
			}
		})
	}
	pool.StopAndWait()
	for i := range res {
		if !started[i] {
			res[i].Err = fmt.Errorf("model %s: not pulled: %w", models[i], context.Cause(ctx))
		}
	}
	return res
}
