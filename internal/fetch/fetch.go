// Package fetch answers "give me this model's SIF": it resolves a MODEL argument
// through the catalog, finds it in the cache, and otherwise opens the image (registry,
// OCI layout or docker archive), converts it to SIF and commits it to the cache, once
// however many processes ask at the same time. With Offline it resolves from the cache
// alone and says which command would fix a miss.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/convert"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// Options say where models come from and go to.
type Options struct {
	// Cache is the SIF cache (required).
	Cache *cache.Cache
	// Catalog maps names to images; nil means only image references and files work.
	Catalog *catalog.Catalog
	// Offline resolves from the cache only and never touches the network.
	Offline bool
	// Registry configures image sources (platform, insecure hosts, progress, retries).
	// Its Offline field is forced to Options.Offline.
	Registry registry.Options
	// Compression is the squashfs compressor of new SIFs, ALGO[:LEVEL]
	// (convert.ParseCompression); empty is convert.DefaultCompression (gzip:3).
	Compression string
	// TmpDir holds the downloaded layers of a conversion and, on the tree path
	// only, its unpacked root file system (default TMPDIR).
	TmpDir string
	// NoLayerCache downloads the layers of each conversion into TmpDir and
	// drops them after it, instead of keeping them in the cache's blob store
	// (CACHE/blobs), where other models built on the same layers find them.
	NoLayerCache bool
	// Log receives deprecation warnings and what was done.
	Log zerolog.Logger
	// Verify re-hashes a SIF found in the cache against the sha256 recorded when it
	// was committed before returning it (cache.CheckEntry), so that a corrupt SIF is
	// reported as such (a *cache.CorruptError) instead of failing later inside a run.
	// It reads the whole SIF: set it where a job is created (predict, submit) and for
	// pull, not on every Slurm array task. Default false.
	Verify bool
}

// Model is a model ready to run: its SIF and what is known about it.
type Model struct {
	// Name is the catalog ID (name@version) or the argument as given.
	Name string
	// Entry is the catalog entry, nil for image references and .sif files.
	Entry *catalog.Entry
	// Ref is the image source it came from (registry reference, oci-layout:…).
	Ref string
	// Digest is the image's manifest digest (empty for a .sif without provenance).
	Digest string
	// SIF is the absolute path of the SIF file.
	SIF string
	// Meta is the cache metadata (for a .sif file, what its descriptors say).
	Meta *cache.Meta
	// Predict is the predict command (empty when neither the catalog nor the image
	// names one; PredictCommand then says what to add); PredictFrom says where it
	// came from.
	Predict     []string
	PredictFrom string
	// GPU is the catalog's "needs a GPU" flag.
	GPU bool
	// Built is true when this call converted the image (false: it was cached).
	Built bool
}

// ErrTmpFull is returned when the layers fetched into the scratch directory
// (Options.TmpDir, with NoLayerCache) do not fit there.
var ErrTmpFull = errors.New("no space left for the layers in the temporary directory")

// NotCachedError is the offline failure: the model is not in the cache and the network
// may not be used. Its message is one line naming the model and the cache (the
// command line adds the command that stages it). It matches cache.ErrNotCached and registry.ErrOffline.
type NotCachedError struct {
	Model, Image, CacheDir string
}

func (e *NotCachedError) Error() string {
	what := fmt.Sprintf("model %q", e.Model)
	if e.Image != "" && e.Image != e.Model {
		what += " (" + e.Image + ")"
	}
	return fmt.Sprintf("%s is not in the cache %s and offline mode is set", what, e.CacheDir)
}

// Unwrap makes errors.Is match cache.ErrNotCached and registry.ErrOffline.
func (e *NotCachedError) Unwrap() []error { return []error{cache.ErrNotCached, registry.ErrOffline} }

// Ensure returns the model's SIF, fetching and converting it if needed.
//
// MODEL is a catalog name[@version], an image reference, a digest pin
// (name@sha256:… or repo@sha256:…), oci-layout:DIR[:TAG], docker-archive:FILE, or a
// path to a .sif file used as is. Online, a tag is resolved to its manifest digest at
// the registry; a cached digest is used as is, otherwise the image is converted inside
// cache.Commit (one conversion across processes and nodes). The image reference and the
// catalog ID are recorded as refs to the digest, for offline use later. Offline, only
// the cache is read (local oci-layout/docker-archive sources may still be converted).
func Ensure(ctx context.Context, model string, o Options) (*Model, error) {
	if o.Cache == nil {
		return nil, errors.New("fetch: no cache")
	}
	t, err := Parse(model, o.Catalog)
	if err != nil {
		return nil, err
	}
	warnDeprecated(t, o.Log)
	if t.Kind == KindSIF {
		return fromSIF(t)
	}
	if o.Offline || t.Kind == KindDigest {
		// A pin, or anything offline: the cache may answer without the network.
		m, err := resolve(t, o)
		if err == nil {
			return m, check(ctx, t, m, o)
		}
		if !errors.Is(err, cache.ErrNotCached) {
			return nil, err
		}
		if o.Offline && t.Kind != KindLocal && !registry.IsLocal(t.Image) {
			return nil, &NotCachedError{Model: t.Input, Image: t.Image, CacheDir: o.Cache.Dir}
		}
	}
	ro := o.Registry
	ro.Offline = o.Offline
	img, src, err := registry.Open(ctx, t.Image, ro)
	if errors.Is(err, registry.ErrUnreachable) {
		// The tag cannot be checked for a newer image, but the cache holds what it
		// resolved to before: run that, say so, and name the digest it is.
		if m, cerr := resolve(t, o); cerr == nil {
			o.Log.Warn().Str("model", t.Name()).Str("digest", m.Digest).Err(err).
				Msg("registry unreachable: using the cached image this reference last resolved to (not checked for a newer one)")
			return m, check(ctx, t, m, o)
		}
	}
	if err != nil {
		return nil, modelErr(t, err)
	}
	if t.Kind == KindDigest && src.Digest != t.Digest {
		return nil, fmt.Errorf("model %s: %s has digest %s, not the pinned %s", t.Input, t.Image, src.Digest, t.Digest)
	}
	buildFn := func(ctx context.Context, tmpSIF string) (*cache.Meta, error) {
		return build(ctx, t, img, src, tmpSIF, o)
	}
	path, meta, built, err := o.Cache.Commit(ctx, src.Digest, buildFn)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", t.Name(), err)
	}
	for _, ref := range recordRefs(t) {
		if err := o.Cache.SetRef(ref, src.Digest); err != nil {
			// The SIF is there: a read-only cache only loses the offline shortcut.
			o.Log.Warn().Err(err).Str("ref", ref).Msg("could not record the ref for offline use")
		}
	}
	m, err := newModel(t, src.Ref, src.Digest, path, meta, built)
	if err != nil {
		return nil, err
	}
	if built {
		o.Log.Info().Str("model", t.Name()).Str("digest", src.Digest).Str("sif", path).Msg("converted")
		return m, nil // hashed by the commit just now
	}
	if err := check(ctx, t, m, o); err != nil {
		return nil, err
	}
	o.Log.Info().Str("model", t.Name()).Str("digest", src.Digest).Str("sif", path).Msg("cached")
	return m, nil
}

// check re-hashes a cached model's SIF when o.Verify asks for it.
func check(ctx context.Context, t *Target, m *Model, o Options) error {
	if !o.Verify || m.Built {
		return nil
	}
	o.Log.Debug().Str("model", t.Name()).Str("digest", m.Digest).Msg("checking the cached SIF against its recorded sha256")
	if err := o.Cache.CheckEntry(ctx, m.Digest); err != nil {
		return fmt.Errorf("model %s: %w", t.Name(), err)
	}
	return nil
}

// Resolve finds the model in the cache only: no network, no lock, no write. A .sif
// path is inspected; a miss is a *NotCachedError when Options.Offline is set, otherwise
// an error wrapping cache.ErrNotCached that suggests 'scv-hpc pull'.
func Resolve(ctx context.Context, model string, o Options) (*Model, error) {
	if o.Cache == nil {
		return nil, errors.New("fetch: no cache")
	}
	t, err := Parse(model, o.Catalog)
	if err != nil {
		return nil, err
	}
	if t.Kind == KindSIF {
		return fromSIF(t)
	}
	m, err := resolve(t, o)
	if errors.Is(err, cache.ErrNotCached) {
		if o.Offline {
			return nil, &NotCachedError{Model: t.Input, Image: t.Image, CacheDir: o.Cache.Dir}
		}
		return nil, fmt.Errorf("model %q is not in the cache %s: %w", t.Input, o.Cache.Dir, cache.ErrNotCached)
	}
	if err != nil {
		return nil, err
	}
	return m, check(ctx, t, m, o)
}

// SIFPath returns the SIF file model names: a path ending in .sif (Parse's rule of
// what is a SIF) as it is, without opening it, else the SIF of the model in the cache
// (Resolve: cache only).
func SIFPath(ctx context.Context, model string, o Options) (string, error) {
	t, err := Parse(model, o.Catalog)
	if err != nil {
		return "", err
	}
	if t.Kind == KindSIF {
		return t.SIF, nil
	}
	m, err := Resolve(ctx, model, o)
	if err != nil {
		return "", err
	}
	return m.SIF, nil
}

// Inspect describes the SIF model names (SIFPath): its descriptors and metadata
// (sif.Inspect) and its runscript (sif.Info.ReadRunscript).
func Inspect(ctx context.Context, model string, o Options) (*sif.Info, error) {
	path, err := SIFPath(ctx, model, o)
	if err != nil {
		return nil, err
	}
	info, err := sif.Inspect(path)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", model, err)
	}
	info.ReadRunscript(ctx)
	return info, nil
}

func resolve(t *Target, o Options) (*Model, error) {
	digest, path, meta, err := Cached(o.Cache, t)
	if err != nil {
		return nil, err
	}
	ref := t.Image
	if meta.Source != "" {
		ref = meta.Source
	}
	o.Log.Debug().Str("model", t.Name()).Str("digest", digest).Str("sif", path).Msg("resolved from the cache")
	return newModel(t, ref, digest, path, meta, false)
}

func newModel(t *Target, ref, digest, path string, meta *cache.Meta, built bool) (*Model, error) {
	m := &Model{Name: t.Name(), Entry: t.Entry, Ref: ref, Digest: digest, SIF: path, Meta: meta, Built: built}
	if t.Entry != nil {
		m.GPU = t.Entry.GPU
	}
	// An image without a predict command can still be pulled; whoever runs it calls
	// PredictCommand for the error that says what to add.
	m.Predict, m.PredictFrom, _ = PredictCommand(m.Name, t.Entry, meta.Labels, meta.Entrypoint, meta.Cmd)
	return m, nil
}

// build is the build step run under the cache lock: fetch the layers, write the SIF.
func build(ctx context.Context, t *Target, img v1.Image, src registry.Source, tmpSIF string, o Options) (*cache.Meta, error) {
	o.Log.Info().Str("model", t.Name()).Str("ref", src.Ref).Str("digest", src.Digest).Msg("converting to SIF")
	comp, err := convert.ParseCompression(o.Compression)
	if err != nil {
		return nil, err
	}
	tmpDir := o.TmpDir
	if tmpDir == "" {
		tmpDir = os.TempDir()
	}
	// Scratch directories of conversions killed on this host before.
	if gone, err := convert.SweepScratch(tmpDir); err == nil && len(gone) > 0 {
		o.Log.Info().Strs("removed", gone).Msg("removed scratch directories of conversions that died")
	}
	// One progress display for the whole pull: layer bytes downloaded, then
	// file bytes packed.
	var bar progress.Reporter = progress.Nop{}
	if o.Registry.Progress != nil {
		bar = o.Registry.Progress("pull "+t.Name(), "bytes")
	}
	defer bar.Done()
	fetchPart := &phase{r: bar}
	start := time.Now()
	wait := func() error { return nil }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if src.Kind == registry.KindRegistry {
		// The layers download in parallel while the conversion reads them as
		// they arrive: into the cache's blob store, shared by every model, or
		// else into a scratch directory dropped after the conversion.
		ro := o.Registry
		dir := ""
		if o.NoLayerCache {
			var err error
			if dir, err = convert.MkScratch(tmpDir, "layers"); err != nil {
				return nil, fmt.Errorf("layers of %s: %w", src.Ref, err)
			}
			defer os.RemoveAll(dir)
		} else {
			ro.Blobs = o.Cache
		}
		ro.Offline = o.Offline
		ro.Progress = func(string, string) progress.Reporter { return fetchPart }
		var prefetchWait func() error
		if img, prefetchWait, err = registry.PrefetchStream(ctx, img, dir, ro); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src.Ref, err)
		}
		waited := false
		defer func() {
			if !waited {
				cancel()
				_ = prefetchWait()
			}
		}()
		wait = func() error {
			waited = true
			err := prefetchWait()
			if err == nil {
				o.Log.Info().Str("model", t.Name()).Dur("fetch", time.Since(start)).Msg("layers fetched")
				return nil
			}
			if dir != "" && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
				return fmt.Errorf("fetch %s: %w %s: %w", src.Ref, ErrTmpFull, tmpDir, err)
			}
			return fmt.Errorf("fetch %s: %w", src.Ref, err)
		}
	}
	copts := convert.Options{Compression: comp, TmpDir: tmpDir, Log: o.Log,
		Progress: &phase{r: bar, base: fetchPart.total}}
	prov := convert.Provenance{Ref: src.Ref, Digest: src.Digest, Tool: "scv-hpc " + version.String(), Platform: src.Platform}
	cerr := convert.Convert(ctx, img, tmpSIF, prov, copts)
	if cerr != nil {
		cancel() // a failed conversion stops the downloads
	}
	switch werr := wait(); {
	case werr != nil && (cerr == nil || !errors.Is(werr, context.Canceled)):
		return nil, werr // a failed download is the cause: the conversion stopped reading it
	case cerr != nil:
		return nil, cerr
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config of %s: %w", src.Ref, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read image config of %s: %w", src.Ref, err)
	}
	return &cache.Meta{
		Digest: src.Digest, Refs: recordRefs(t), Platform: src.Platform, Source: src.Ref,
		Config: raw, Labels: cf.Config.Labels, Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, Env: cf.Config.Env,
	}, nil
}

// fromSIF describes a .sif file given directly, from its own descriptors.
func fromSIF(t *Target) (*Model, error) {
	info, err := sif.Inspect(t.SIF)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", t.Input, err)
	}
	meta := &cache.Meta{Size: info.Size}
	if p := info.Provenance; p != nil {
		meta.Digest, meta.Source, meta.Platform, meta.Tool = p.Digest, p.Ref, p.Platform, p.Tool
	}
	if c := info.Config; c != nil {
		meta.Labels, meta.Entrypoint, meta.Cmd, meta.Env = c.Labels, c.Entrypoint, c.Cmd, c.Env
	}
	return newModel(t, meta.Source, meta.Digest, info.Path, meta, false)
}

func warnDeprecated(t *Target, log zerolog.Logger) {
	if t.Entry != nil && t.Entry.Deprecated != "" {
		log.Warn().Str("model", t.Entry.ID()).Msgf("model %s is deprecated: %s", t.Entry.ID(), t.Entry.Deprecated)
	}
}

// modelErr prefixes a source error with the catalog name when the user gave one, so
// the line names both the model and the reference.
func modelErr(t *Target, err error) error {
	if t.Entry == nil && t.Input == t.Image {
		return err
	}
	if strings.Contains(err.Error(), t.Image) {
		return fmt.Errorf("model %q: %w", t.Input, err)
	}
	return fmt.Errorf("model %q (%s): %w", t.Input, t.Image, err)
}

// phase is one stage of a progress display shared by several stages: its
// total comes after the totals of the stages before it (base), and only the
// owner of the display ends it.
type phase struct {
	r     progress.Reporter
	base  int64
	total int64
}

func (p *phase) SetTotal(n int64) { p.total = n; p.r.SetTotal(p.base + n) }
func (p *phase) Add(n int64)      { p.r.Add(n) }
func (p *phase) Done()            {}
