package imagebuild

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// ErrBadFlag marks image build flags that cannot be used: no output or more than one,
// nothing to pack, a malformed --add, --oci-layout or setting. The command line shows
// it as a usage error.
var ErrBadFlag = errors.New("bad image build flags")

// Flags are the flags of 'image build': what goes into the image, its configuration,
// and the one output.
type Flags struct {
	FromDir       string
	Adds          []string
	Entrypoint    []string
	Cmd           []string
	Env           []string
	Labels        []string
	Workdir       string
	Platform      string
	Push          string
	OCILayout     string
	DockerArchive string
	ArchiveTag    string
	Insecure      []string
}

// AddFlags defines the image build flags on fs (defaults: --platform
// registry.DefaultPlatform, --tag scv-hpc/image:latest).
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.FromDir, "from-dir", "", "root file system directory packed as the bottom layer (owners and modes kept)")
	fs.StringArrayVar(&f.Adds, "add", nil, "host file or directory SRC placed at DST in the image, as SRC:DST; repeatable")
	fs.StringArrayVar(&f.Entrypoint, "entrypoint", nil, "entrypoint argument (repeat per argument) or a JSON array")
	fs.StringArrayVar(&f.Cmd, "cmd", nil, "default arguments (repeat per argument) or a JSON array")
	fs.StringArrayVar(&f.Env, "env", nil, "environment KEY=VALUE; repeatable")
	fs.StringArrayVar(&f.Labels, "label", nil, "image label KEY=VALUE; repeatable")
	fs.StringVar(&f.Workdir, "workdir", "", "working directory of the image")
	fs.StringVar(&f.Platform, "platform", registry.DefaultPlatform, "platform os/arch[/variant] recorded in the image")
	fs.StringVar(&f.Push, "push", "", "push to this registry reference HOST/REPO:TAG")
	fs.StringVar(&f.OCILayout, "oci-layout", "", "add to the OCI image layout DIR, tagged TAG when given (DIR[:TAG])")
	fs.StringVar(&f.DockerArchive, "docker-archive", "", "write a 'docker save' archive FILE")
	fs.StringVar(&f.ArchiveTag, "tag", "scv-hpc/image:latest", "image name recorded in a --docker-archive")
	fs.StringSliceVar(&f.Insecure, "insecure-registry", nil, "registry HOST[:PORT] to push to over plain HTTP (loopback always is)")
}

// Build packs the image the flags describe (Layers, Image) and writes it to their one
// output: pushed with o (its Insecure and Platform set from the flags), added to an
// OCI layout, or written as a docker archive. It returns the image digest. Files left
// out of the image and the output written are logged to log. Flags that cannot be
// used are ErrBadFlag, checked before anything is packed.
func (f *Flags) Build(ctx context.Context, o registry.Options, log zerolog.Logger) (v1.Hash, error) {
	cfg, adds, err := f.check()
	if err != nil {
		return v1.Hash{}, err
	}
	layers, err := Layers(f.FromDir, adds, func(p, why string) {
		log.Warn().Str("path", p).Str("reason", why).Msg("left out of the image")
	})
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := Image(layers, cfg)
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("build image: %w", err)
	}
	switch {
	case f.Push != "":
		o.Insecure, o.Platform = f.Insecure, f.Platform
		if err := Push(ctx, img, f.Push, o); err != nil {
			return v1.Hash{}, err
		}
		log.Info().Str("ref", f.Push).Str("digest", digest.String()).Msg("pushed image")
	case f.OCILayout != "":
		dir, tag, _ := ParseLayoutTarget(f.OCILayout) // checked
		if err := WriteLayout(dir, img, tag); err != nil {
			return v1.Hash{}, err
		}
		log.Info().Str("layout", dir).Str("tag", tag).Str("digest", digest.String()).Msg("wrote image")
	default:
		if err := WriteDockerArchive(f.DockerArchive, f.ArchiveTag, img); err != nil {
			return v1.Hash{}, err
		}
		log.Info().Str("archive", f.DockerArchive).Str("digest", digest.String()).Msg("wrote image")
	}
	return digest, nil
}

// check returns the image configuration and the --adds the flags give, or ErrBadFlag.
func (f *Flags) check() (Config, []Add, error) {
	bad := func(err error) (Config, []Add, error) { return Config{}, nil, fmt.Errorf("%w: %w", ErrBadFlag, err) }
	outs := 0
	for _, s := range []string{f.Push, f.OCILayout, f.DockerArchive} {
		if s != "" {
			outs++
		}
	}
	if outs != 1 {
		return bad(errors.New("give exactly one of --push REF, --oci-layout DIR[:TAG], --docker-archive FILE"))
	}
	if f.FromDir == "" && len(f.Adds) == 0 {
		return bad(errors.New("nothing to pack: give --from-dir ROOTFS and/or --add SRC:DST"))
	}
	if f.OCILayout != "" {
		if _, _, err := ParseLayoutTarget(f.OCILayout); err != nil {
			return bad(fmt.Errorf("--oci-layout: %w", err))
		}
	}
	cfg := Config{WorkingDir: f.Workdir, Platform: f.Platform}
	for _, p := range []struct {
		flag  string
		parse func() error
	}{
		{"--entrypoint", func() (err error) { cfg.Entrypoint, err = ParseArgs(f.Entrypoint); return }},
		{"--cmd", func() (err error) { cfg.Cmd, err = ParseArgs(f.Cmd); return }},
		{"--env", func() (err error) { cfg.Env, err = ParseEnv(f.Env); return }},
		{"--label", func() (err error) { cfg.Labels, err = ParseLabels(f.Labels); return }},
	} {
		if err := p.parse(); err != nil {
			return bad(fmt.Errorf("%s %w", p.flag, err))
		}
	}
	adds := make([]Add, len(f.Adds))
	for i, s := range f.Adds {
		add, err := ParseAdd(s)
		if err != nil {
			return bad(fmt.Errorf("--add %w", err))
		}
		adds[i] = add
	}
	return cfg, adds, nil
}
