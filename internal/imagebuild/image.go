package imagebuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// Config is the runtime configuration of a built image.
type Config struct {
	Entrypoint, Cmd []string
	// Env holds KEY=VALUE pairs (default: a standard PATH).
	Env []string
	// Labels become OCI config labels, e.g. org.scivision.predict.
	Labels     map[string]string
	WorkingDir string
	// Platform is os/arch[/variant] (default linux/amd64).
	Platform string
}

// DefaultPath is the PATH set when Config.Env does not set one.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Image assembles an OCI image (OCI manifest and config media types) from layers,
// bottom first, with cfg. Creation and history times are Epoch, so the same layers and
// config give the same digest.
func Image(layers []v1.Layer, cfg Config) (v1.Image, error) {
	platStr := cfg.Platform
	if platStr == "" {
		platStr = registry.DefaultPlatform
	}
	plat, err := v1.ParsePlatform(platStr)
	if err != nil || plat.OS == "" || plat.Architecture == "" {
		return nil, fmt.Errorf("build image: bad platform %q: use os/arch[/variant]", platStr)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "scv-hpc image build"}}
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Created = v1.Time{Time: Epoch}
	env := append([]string{}, cfg.Env...)
	hasPath := false
	for _, e := range env {
		if len(e) >= 5 && e[:5] == "PATH=" {
			hasPath = true
		}
	}
	if !hasPath {
		env = append([]string{DefaultPath}, env...)
	}
	cf.Config.Env = env
	cf.Config.Entrypoint = cfg.Entrypoint
	cf.Config.Cmd = cfg.Cmd
	cf.Config.WorkingDir = cfg.WorkingDir
	if len(cfg.Labels) > 0 {
		cf.Config.Labels = map[string]string{}
		for k, v := range cfg.Labels {
			cf.Config.Labels[k] = v
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	return img, nil
}

// Push uploads img to the registry reference ref (host/repo:tag), with registry.Open's
// transport rules: plain HTTP only to loopback or o.Insecure hosts, retries, the docker
// config keychain.
func Push(ctx context.Context, img v1.Image, ref string, o registry.Options) error {
	return registry.Write(ctx, ref, img, o)
}

// ParseLayoutTarget reads DIR[:TAG], where WriteLayout is to write an image, as the
// reference oci-layout:DIR[:TAG] is read (registry.Parse; DIR is made absolute). A
// digest is refused (ErrBadSetting): the digest of an image is known only once it is
// built.
func ParseLayoutTarget(s string) (dir, tag string, err error) {
	r, err := registry.Parse("oci-layout:" + s)
	if err != nil {
		return "", "", err
	}
	if r.Digest != "" {
		return "", "", fmt.Errorf("%s: %w: give DIR[:TAG], not a digest: the digest of the image is known only once it is built", s, ErrBadSetting)
	}
	return r.Path, r.Tag, nil
}

// WriteLayout adds img to the OCI image layout at dir (created when missing), tagged tag
// (org.opencontainers.image.ref.name) when tag is not empty; an image already holding
// that tag is replaced. Read it back with registry.Open("oci-layout:DIR:TAG").
func WriteLayout(dir string, img v1.Image, tag string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("write OCI layout %s: %w", dir, err)
		}
	}
	if tag == "" {
		err = p.AppendImage(img)
	} else {
		ann := map[string]string{registry.RefNameAnnotation: tag}
		err = p.ReplaceImage(img, match.Annotation(registry.RefNameAnnotation, tag), layout.WithAnnotations(ann))
	}
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}

// WriteDockerArchive writes img as a 'docker save' archive at path, tagged ref (e.g.
// example.org/faces:1.0), replacing the file atomically.
func WriteDockerArchive(path, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return fmt.Errorf("write docker archive %s: bad tag %q: %w", path, ref, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write docker archive %s: %w", path, err)
	}
	err = fsutil.WriteAtomic(path, 0o644, func(w io.Writer) error {
		return tarball.Write(tag, img, w)
	})
	if err != nil {
		return fmt.Errorf("write docker archive: %w", err)
	}
	return nil
}
