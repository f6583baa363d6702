package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alitto/pond/v2"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BlobStore keeps layer blobs across conversions (cache.Cache implements it).
// Blob returns the path of the complete, digest-checked blob, calling fetch
// to download it when the store does not hold it; fetched says whether it did.
type BlobStore interface {
	Blob(ctx context.Context, digest string, size int64, fetch func(w io.Writer) error) (path string, fetched bool, err error)
}

// Prefetch downloads every compressed layer of img into dir (or, with o.Blobs,
// into that store, where layers already there are not downloaded again), o.Jobs at a time, checking
// each against its digest, and reports bytes done/total through o.Progress("pull REF",
// "bytes") where REF is o.Name, else the image digest. It returns an image with the same manifest and
// config whose layers read those local files (dir/sha256/<hex>): nothing more is fetched
// after it returns. dir is scratch space for one conversion, so nothing in it is reused
// and the files are not synced. A layer whose download fails transiently is fetched
// again, up to o.Retries times.
func Prefetch(ctx context.Context, img v1.Image, dir string, o Options) (v1.Image, error) {
	local, wait, err := PrefetchStream(ctx, img, dir, o)
	if err != nil {
		return nil, err
	}
	if err := wait(); err != nil {
		return nil, err
	}
	return local, nil
}

// PrefetchStream is Prefetch that returns at once, while the layers download:
// the image's layers can be read as they arrive (a reader waits behind the
// download, reading the file it writes; follow.go), so a conversion overlaps
// the download. wait returns when every layer is complete, with Prefetch's
// error; a reader of a layer whose download failed gets that error. The
// caller must call wait, and cancel ctx to stop the downloads early.
func PrefetchStream(ctx context.Context, img v1.Image, dir string, o Options) (image v1.Image, wait func() error, err error) {
	o = o.withDefaults()
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("prefetch: read manifest: %w", err)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("prefetch: read config: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, nil, fmt.Errorf("prefetch: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("prefetch %s: list layers: %w", digest, err)
	}
	if o.Blobs != nil {
		// Nothing is written to dir.
	} else if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o755); err != nil {
		return nil, nil, fmt.Errorf("prefetch %s: %w", digest, err)
	}

	local := make([]*localLayer, len(layers))
	var total int64
	counted := map[v1.Hash]bool{} // a layer repeated in the manifest is fetched once
	for i, l := range layers {
		ll, err := describe(l, dir)
		if err != nil {
			return nil, nil, fmt.Errorf("prefetch %s: layer %d: %w", digest, i, err)
		}
		local[i] = ll
		if !counted[ll.digest] {
			counted[ll.digest] = true
			total += ll.size
		}
	}

	label := o.Name
	if label == "" {
		label = digest.String()
	}
	rep := o.Progress("pull "+label, "bytes")
	rep.SetTotal(total)

	for _, ll := range local {
		ll.follow = newFollow()
	}
	image, err = newLocalImage(rawManifest, rawConfig, local)
	if err != nil {
		return nil, nil, err
	}
	pool := pond.NewPool(o.Jobs, pond.WithContext(ctx))
	group := pool.NewGroupContext(ctx)
	submitted := map[v1.Hash]bool{}
	for i, l := range layers {
		ll := local[i]
		if submitted[ll.digest] {
			continue
		}
		submitted[ll.digest] = true
		group.SubmitErr(func() error {
			fetch := fetchLayer
			if o.Blobs != nil {
				fetch = storeLayer
			}
			err := fetch(group.Context(), l, ll, o, rep)
			if err != nil {
				// Every reader stops: layers not started yet never will be.
				err = fmt.Errorf("prefetch %s: layer %s: %w", digest, ll.digest, err)
				finishAll(local, err)
				return err
			}
			for _, other := range local { // the manifest may list a layer twice
				if other.digest == ll.digest {
					other.path, other.reused = ll.path, ll.reused
					other.follow.finish(ll.path, nil)
				}
			}
			return nil
		})
	}
	// Readers blocked on a layer end when ctx does.
	stopWatch := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			finishAll(local, fmt.Errorf("prefetch %s: %w", digest, ctx.Err()))
		case <-stopWatch:
		}
	}()
	wait = func() error {
		err := group.Wait()
		pool.StopAndWait()
		close(stopWatch)
		rep.Done()
		if err != nil {
			finishAll(local, err)
		}
		if err != nil {
			// A download's own failure, even when ctx ended since (the caller
			// cancels once the conversion failed of it); else ctx's end.
			if ctxErr := ctx.Err(); ctxErr != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				return fmt.Errorf("prefetch %s: %w", digest, ctxErr)
			}
			return err
		}
		var fetched, reused int64
		for d := range submitted {
			for _, ll := range local {
				if ll.digest == d {
					if ll.reused {
						reused += ll.size
					} else {
						fetched += ll.size
					}
					break
				}
			}
		}
		o.Log.Info().Str("image", label).Int64("fetched_bytes", fetched).Int64("cached_bytes", reused).Msg("layers ready")
		return nil
	}
	return image, wait, nil
}

// finishAll ends the downloads of every layer not complete yet with err.
func finishAll(local []*localLayer, err error) {
	for _, ll := range local {
		ll.follow.finish("", err)
	}
}

// describe reads what a layer is without fetching it.
func describe(l v1.Layer, dir string) (*localLayer, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	if d.Algorithm != "sha256" {
		return nil, fmt.Errorf("unsupported digest algorithm %s", d.Algorithm)
	}
	diffID, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	return &localLayer{digest: d, diffID: diffID, size: size, mediaType: mt, path: filepath.Join(dir, "sha256", d.Hex)}, nil
}

// fetchLayer downloads one layer into a temp file, checks size and digest, then renames
// it into place, so a file under its digest's name is always complete.
func fetchLayer(ctx context.Context, l v1.Layer, ll *localLayer, o Options, rep interface{ Add(int64) }) error {
	return withRetries(ctx, ll, o, rep, func() (int64, error) { return download(ctx, l, ll, o.StallTimeout, rep.Add) })
}

// storeLayer gets one layer through o.Blobs: from the store when it holds it,
// else downloaded into it (the store checks the digest), with retries.
func storeLayer(ctx context.Context, l v1.Layer, ll *localLayer, o Options, rep interface{ Add(int64) }) error {
	return withRetries(ctx, ll, o, rep, func() (int64, error) {
		var n int64
		path, fetched, err := o.Blobs.Blob(ctx, ll.digest.String(), ll.size, func(w io.Writer) error {
			rep.Add(-n) // an earlier try inside the store's lock
			n = 0
			if named, ok := w.(interface{ Name() string }); ok {
				ll.follow.start(named.Name())
				w = &followWriter{w: w, f: ll.follow}
			}
			body, err := openBody(ctx, l, o.StallTimeout, func(k int64) { n += k; rep.Add(k) })
			if err != nil {
				return err
			}
			defer body.Close()
			_, err = io.Copy(w, body)
			return err
		})
		if err != nil {
			return n, err
		}
		ll.path, ll.reused = path, !fetched
		if !fetched {
			rep.Add(ll.size)
		}
		return 0, nil
	})
}

// withRetries runs one layer's fetch until it succeeds, retrying transient failures
// up to o.Retries times (o.RetryDelay, doubling); the bytes a failed try reported to
// rep are taken back.
func withRetries(ctx context.Context, ll *localLayer, o Options, rep interface{ Add(int64) }, try func() (int64, error)) error {
	delay := o.RetryDelay
	for attempt := 0; ; attempt++ {
		n, err := try()
		if err == nil {
			return nil
		}
		rep.Add(-n) // that try's bytes are thrown away
		if attempt >= o.Retries || ctx.Err() != nil || !transient(err) {
			return err
		}
		o.Log.Warn().Err(err).Str("layer", ll.digest.String()).Dur("retry_in", delay).Msg("layer download failed; retrying")
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// transient reports a layer download's failure that another try may not meet: a
// connection cut or reset in the body, a timeout. Not an HTTP answer of the registry
// (httpAnswer): a 404 or 401 is definite, and a 408, 429 or 5xx was already retried
// by the request itself (remoteOptions); not other bytes than the digest's, nor a
// local disk that refuses the file.
func transient(err error) bool {
	return httpAnswer(err) == nil && !isDigestMismatch(err) && !errors.Is(err, os.ErrPermission) &&
		!strings.Contains(err.Error(), "no space left")
}

var errDigestMismatch = errors.New("digest mismatch")

// isDigestMismatch reports bytes that do not hash to the layer's digest: the
// registry serves other content, which another try would get again.
// go-containerregistry checks a layer as it reads it, before our check, and its
// error (an internal type) is known by its text. A body of another size than the
// layer's ("error verifying size") is not one: a connection closed early, with no
// length sent, ends it cleanly but short, and another try may get it whole.
func isDigestMismatch(err error) bool {
	return errors.Is(err, errDigestMismatch) || strings.Contains(err.Error(), "checksum after reading")
}

func download(ctx context.Context, l v1.Layer, ll *localLayer, stall time.Duration, add func(int64)) (int64, error) {
	body, err := openBody(ctx, l, stall, add)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	tmp, err := os.CreateTemp(filepath.Dir(ll.path), ".part-"+ll.digest.Hex[:12]+"-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	h := sha256.New()
	ll.follow.start(tmp.Name())
	n, err := io.Copy(io.MultiWriter(&followWriter{w: tmp, f: ll.follow}, h), body)
	if err != nil {
		tmp.Close()
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != ll.digest.Hex || n != ll.size {
		return n, fmt.Errorf("%w: got sha256:%s (%d bytes), want %s (%d bytes)", errDigestMismatch, got, n, ll.digest, ll.size)
	}
	return n, os.Rename(tmp.Name(), ll.path)
}

// errStalled is a layer download cut because no byte came for Options.StallTimeout: a
// transient failure, tried again.
var errStalled = errors.New("layer download stalled")

// layerBody is a layer's download as it is read: it ends when its context ends,
// reports bytes as they arrive, and is cut (errStalled) when no byte came for stall.
type layerBody struct {
	ctx     context.Context
	rc      io.ReadCloser
	add     func(int64)
	stall   time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	stopCtx func() bool
}

// openBody starts the download of l's compressed bytes; stall 0 never cuts it. A read
// blocked on the network ends when ctx ends or the stall timer fires: both close the
// response body under it.
func openBody(ctx context.Context, l v1.Layer, stall time.Duration, add func(int64)) (*layerBody, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	b := &layerBody{ctx: ctx, rc: rc, add: add, stall: stall}
	b.stopCtx = context.AfterFunc(ctx, func() { rc.Close() })
	if stall > 0 {
		b.timer = time.AfterFunc(stall, func() {
			b.stalled.Store(true)
			rc.Close()
		})
		b.timer.Stop() // armed only while a Read waits on the network
	}
	return b, nil
}

// Read reads from the network, cut when it waits longer than the stall timeout: the
// time the caller spends writing what it read (a slow blob store) does not count.
func (b *layerBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if b.timer != nil {
		b.timer.Reset(b.stall)
	}
	n, err := b.rc.Read(p)
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.stalled.Load() {
		return 0, fmt.Errorf("%w: no byte for %s", errStalled, b.stall)
	}
	if n > 0 && b.add != nil {
		b.add(int64(n))
	}
	return n, err
}

func (b *layerBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	b.stopCtx()
	return b.rc.Close()
}

// localLayer is a compressed layer stored in a file named by its digest.
type localLayer struct {
	digest, diffID v1.Hash
	size           int64
	mediaType      types.MediaType
	path           string
	reused         bool    // found in the blob store, not downloaded
	follow         *follow // the download, for readers that come before it ends
}

func (l *localLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *localLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *localLayer) Size() (int64, error)                { return l.size, nil }
func (l *localLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *localLayer) Compressed() (io.ReadCloser, error) {
	return &followReader{f: l.follow}, nil
}

// newLocalImage assembles the prefetched image from its raw manifest and config.
func newLocalImage(rawManifest, rawConfig []byte, layers []*localLayer) (v1.Image, error) {
	li := &localImage{rawManifest: rawManifest, rawConfig: rawConfig, byDigest: map[v1.Hash]*localLayer{}}
	for _, l := range layers {
		li.byDigest[l.digest] = l
	}
	mf, err := v1.ParseManifest(strings.NewReader(string(rawManifest)))
	if err != nil {
		return nil, fmt.Errorf("prefetch: parse manifest: %w", err)
	}
	li.mediaType = mf.MediaType
	if li.mediaType == "" {
		li.mediaType = types.OCIManifestSchema1
	}
	return partial.CompressedToImage(li)
}

// localImage implements partial.CompressedImageCore over the local layer files.
type localImage struct {
	rawManifest, rawConfig []byte
	mediaType              types.MediaType
	byDigest               map[v1.Hash]*localLayer
}

func (i *localImage) RawConfigFile() ([]byte, error)      { return i.rawConfig, nil }
func (i *localImage) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *localImage) RawManifest() ([]byte, error)        { return i.rawManifest, nil }
func (i *localImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.byDigest[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("layer %s is not in the prefetched image", h)
}
