// Package registry opens model images from every source scv-hpc accepts: OCI registries
// (auth from the docker config, platform selection, retries with backoff), OCI image
// layouts (oci-layout:DIR[:TAG]) and docker save archives (docker-archive:FILE). Every
// source yields a go-containerregistry v1.Image; Prefetch downloads its layers in
// parallel so a converter reads local files.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// DefaultPlatform is the platform chosen from a multi-platform image when none is given.
const DefaultPlatform = "linux/amd64"

// DefaultStallTimeout is how long a layer download may receive nothing before it is
// cut and tried again: as long as a registry may take to answer a request
// (ResponseHeaderTimeout in remoteOptions).
const DefaultStallTimeout = 2 * time.Minute

// Options configure Open and Prefetch. The zero value works: linux/amd64, the docker
// config keychain, 3 retries starting at 1s, 4 parallel layer fetches, a layer
// download cut after 2 minutes without a byte, no progress.
type Options struct {
	// Platform is os/arch[/variant] (default linux/amd64).
	Platform string
	// Insecure lists registry hosts (host or host:port) allowed over plain HTTP besides
	// loopback ones.
	Insecure []string
	// Keychain finds credentials (default authn.DefaultKeychain: ~/.docker/config.json,
	// $DOCKER_CONFIG, credential helpers).
	Keychain authn.Keychain
	// Retries is how many times a transient failure (5xx, 429, reset, timeout) is retried
	// (default 3; negative means none).
	Retries int
	// RetryDelay is the wait before the first retry, doubled after each (default 1s).
	RetryDelay time.Duration
	// StallTimeout is how long a layer download may receive no byte before it is cut
	// and tried again as a transient failure (default DefaultStallTimeout; negative:
	// never cut).
	StallTimeout time.Duration
	// Jobs is the number of layers fetched at once (default 4).
	Jobs int
	// Progress reports bytes fetched (default: none).
	Progress progress.Factory
	// Log receives debug and warning lines.
	Log zerolog.Logger
	// Offline refuses every registry reference without touching the network.
	Offline bool
	// Name labels Prefetch's progress report ("pull NAME"; default the image digest).
	Name string
	// Blobs, when set, is where Prefetch keeps layers, shared across images
	// (the cache's blob store); nil downloads every layer into Prefetch's dir.
	Blobs BlobStore
}

func (o Options) withDefaults() Options {
	if o.Platform == "" {
		o.Platform = DefaultPlatform
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Retries == 0 {
		o.Retries = 3
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.Jobs <= 0 {
		o.Jobs = 4
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	} else if o.StallTimeout < 0 {
		o.StallTimeout = 0
	}
	if o.Progress == nil {
		o.Progress = progress.NopFactory
	}
	return o
}

// Source says where an opened image came from.
type Source struct {
	// Kind is "registry", "oci-layout" or "docker-archive".
	Kind string
	// Ref is the canonical reference (see Reference.String).
	Ref string
	// Digest is the manifest digest of the image (not of an index), sha256:….
	Digest string
	// Platform is the image's os/arch[/variant] from its config.
	Platform string
}

// Open resolves ref to an image. Registry references (host/repo:tag, repo@sha256:…) go
// to the registry, where an index resolves to the manifest for o.Platform; oci-layout:
// and docker-archive: references read local files and work offline. Failures are
// classified (errors.Is with ErrUnreachable, ErrAuth, ErrNotFound, ErrNoPlatform,
// ErrBadReference, ErrOffline) and their message names ref and what failed.
func Open(ctx context.Context, ref string, o Options) (v1.Image, Source, error) {
	o = o.withDefaults()
	plat, err := v1.ParsePlatform(o.Platform)
	if err != nil || plat.OS == "" || plat.Architecture == "" {
		return nil, Source{}, newError(ErrBadReference, ref, err,
			"bad platform %q: use os/arch[/variant], e.g. linux/amd64 or linux/arm64", o.Platform)
	}
	r, err := Parse(ref, o.Insecure...)
	if err != nil {
		return nil, Source{}, err
	}
	var img v1.Image
	switch r.Kind {
	case KindRegistry:
		img, err = openRegistry(ctx, ref, r, *plat, o)
	case KindOCILayout:
		img, err = openLayout(ref, r, *plat)
	case KindDockerArchive:
		img, err = openArchive(ref, r, *plat)
	}
	if err != nil {
		return nil, Source{}, err
	}
	src := Source{Kind: r.Kind, Ref: r.String()}
	d, err := img.Digest()
	if err != nil {
		return nil, Source{}, classify(ctx, ref, r, err)
	}
	src.Digest = d.String()
	layoutDir := ""
	if r.Kind == KindOCILayout {
		layoutDir = r.Path
	}
	if err := checkBlobs(ref, img, layoutDir); err != nil {
		return nil, Source{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, Source{}, classify(ctx, ref, r, err)
	}
	src.Platform = platformOf(cf)
	if err := checkPlatform(ref, cf, *plat); err != nil {
		return nil, Source{}, err
	}
	o.Log.Debug().Str("ref", src.Ref).Str("digest", src.Digest).Str("platform", src.Platform).Msg("opened image")
	return img, src, nil
}

func openRegistry(ctx context.Context, ref string, r Reference, plat v1.Platform, o Options) (v1.Image, error) {
	host := r.Name.Context().RegistryStr()
	if o.Offline {
		return nil, newError(ErrOffline, ref, nil,
			"image %s is not available offline: fetching it needs registry %s", ref, host)
	}
	desc, err := remote.Get(r.Name, remoteOptions(ctx, plat, o)...)
	if err != nil {
		return nil, classify(ctx, ref, r, err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, classify(ctx, ref, r, err)
		}
		img, err := selectPlatform(idx, plat, ref, nil)
		if err != nil {
			return nil, classify(ctx, ref, r, err)
		}
		return img, nil
	}
	img, err := desc.Image()
	if err != nil {
		return nil, classify(ctx, ref, r, err)
	}
	return img, nil
}

// remoteOptions builds the go-containerregistry options: auth, platform, parallelism,
// retries with exponential backoff, and a transport that refuses plain HTTP to hosts
// that are neither loopback nor listed as insecure.
func remoteOptions(ctx context.Context, plat v1.Platform, o Options) []remote.Option {
	base := remote.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = 2 * time.Minute
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithPlatform(plat),
		remote.WithJobs(o.Jobs),
		remote.WithUserAgent("scv-hpc/" + version.String()),
		remote.WithTransport(&httpGuard{base: base, insecure: o.Insecure}),
		remote.WithRetryBackoff(remote.Backoff{Duration: o.RetryDelay, Factor: 2, Jitter: 0.1, Steps: o.Retries + 1}),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout),
	}
}

// httpGuard refuses plain-HTTP requests to hosts that may not be reached that way.
type httpGuard struct {
	base     http.RoundTripper
	insecure []string
}

// errPlainHTTP marks a request the guard refused.
var errPlainHTTP = errors.New("plain HTTP refused")

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !PlainHTTPAllowed(req.URL.Host, g.insecure) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w to %s: only loopback registries and hosts marked insecure are reached without TLS", errPlainHTTP, req.URL.Host)
	}
	return g.base.RoundTrip(req)
}

func platformOf(cf *v1.ConfigFile) string {
	if cf == nil || cf.OS == "" {
		return ""
	}
	p := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	return p.String()
}

// checkPlatform refuses a single-platform image built for another platform. Images
// whose config names no platform are accepted.
func checkPlatform(ref string, cf *v1.ConfigFile, want v1.Platform) error {
	if cf == nil || cf.OS == "" || cf.Architecture == "" {
		return nil
	}
	have := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if have.Satisfies(want) {
		return nil
	}
	return newError(ErrNoPlatform, ref, nil,
		"image %s has no %s variant; available: %s", ref, want.String(), have.String())
}

// selectPlatform picks the image for want from an index, or explains what is there;
// check, when given, vets the chosen descriptor before its manifest is read.
func selectPlatform(idx v1.ImageIndex, want v1.Platform, ref string, check func(v1.Descriptor) error) (v1.Image, error) {
	image := func(d v1.Descriptor) (v1.Image, error) {
		if check != nil {
			if err := check(d); err != nil {
				return nil, err
			}
		}
		return idx.Image(d.Digest)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var avail []string
	var unlabelled []v1.Descriptor
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		if d.Platform == nil || d.Platform.OS == "" || d.Platform.OS == "unknown" {
			// Attestations carry unknown/unknown; a platform-less child is kept as a
			// fallback when it is the only image.
			if d.Platform == nil || d.Platform.OS == "" {
				unlabelled = append(unlabelled, d)
			}
			continue
		}
		if d.Platform.Satisfies(want) {
			return image(d)
		}
		avail = append(avail, d.Platform.String())
	}
	if len(avail) == 0 && len(unlabelled) == 1 {
		return image(unlabelled[0])
	}
	if len(avail) == 0 {
		avail = []string{"none"}
	}
	return nil, newError(ErrNoPlatform, ref, nil,
		"image %s has no %s variant; available: %s", ref, want.String(), strings.Join(avail, ", "))
}

// classify turns a go-containerregistry or I/O error into a classified *Error.
func classify(ctx context.Context, ref string, r Reference, err error) error {
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("open %s: %w", ref, ctxErr)
	}
	if r.Kind != KindRegistry {
		if errors.Is(err, os.ErrNotExist) {
			return newError(ErrNotFound, ref, err, "image %s not found: %v", ref, err)
		}
		return fmt.Errorf("open %s: %w", ref, err)
	}
	return classifyRemote(ref, r.Name.Context().RegistryStr(), err)
}
