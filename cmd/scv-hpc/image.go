package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

type imageBuildFlags struct {
	fromDir       string
	adds          []string
	entrypoint    []string
	cmd           []string
	env           []string
	labels        []string
	workdir       string
	platform      string
	push          string
	ociLayout     string
	dockerArchive string
	archiveTag    string
	insecure      []string
}

func newImageCmd(a *app) *cobra.Command {
	img := &cobra.Command{
		Use:   "image",
		Short: "Build model images without Docker",
		Args:  cobra.NoArgs,
	}
	img.AddCommand(newImageBuildCmd(a))
	return img
}

func newImageBuildCmd(a *app) *cobra.Command {
	var f imageBuildFlags
	c := &cobra.Command{
		Use:   "build (--push REF | --oci-layout DIR[:TAG] | --docker-archive FILE)",
		Short: "Pack files or a root file system into an OCI image, deterministically",
		Long: `Packs host files (--add SRC:DST) and/or a whole root file system (--from-dir, e.g. a
debootstrap tree) into an OCI image and pushes it to a registry, writes it into an OCI
image layout, or writes a 'docker save' archive. No Docker daemon is needed. Entries are
sorted and their times fixed, so the same inputs always give the same digest, which is
printed on stdout. Layers, bottom first: --from-dir, then each directory --add, then one
layer holding every file --add.

--entrypoint and --cmd take one argument per flag (repeat the flag), or a JSON array.`,
		Example: `  # The demo model: a static binary and its cascade, served by a local registry
  scv-hpc image build --add bin/faces:/usr/local/bin/faces \
    --add "$(go list -m -f '{{.Dir}}' github.com/esimov/pigo)/cascade/facefinder:/usr/share/faces/facefinder" \
    --entrypoint /usr/local/bin/faces --label org.scivision.predict=/usr/local/bin/faces \
    --label org.opencontainers.image.title=faces --push 127.0.0.1:5000/scivision/faces:1.0

  # A Python model on a debootstrap root file system, carried into an air-gapped site
  scv-hpc image build --from-dir ./rootfs --add ./model:/opt/model \
    --entrypoint '["python3","/opt/model/serve.py"]' --env PYTHONUNBUFFERED=1 \
    --oci-layout ./images:plankton-1.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runImageBuild(cmd, a, f)
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.fromDir, "from-dir", "", "root file system directory packed as the bottom layer (owners and modes kept)")
	fs.StringArrayVar(&f.adds, "add", nil, "host file or directory SRC placed at DST in the image, as SRC:DST; repeatable")
	fs.StringArrayVar(&f.entrypoint, "entrypoint", nil, "entrypoint argument (repeat per argument) or a JSON array")
	fs.StringArrayVar(&f.cmd, "cmd", nil, "default arguments (repeat per argument) or a JSON array")
	fs.StringArrayVar(&f.env, "env", nil, "environment KEY=VALUE; repeatable")
	fs.StringArrayVar(&f.labels, "label", nil, "image label KEY=VALUE; repeatable")
	fs.StringVar(&f.workdir, "workdir", "", "working directory of the image")
	fs.StringVar(&f.platform, "platform", registry.DefaultPlatform, "platform os/arch[/variant] recorded in the image")
	fs.StringVar(&f.push, "push", "", "push to this registry reference HOST/REPO:TAG")
	fs.StringVar(&f.ociLayout, "oci-layout", "", "add to the OCI image layout DIR, tagged TAG when given (DIR[:TAG])")
	fs.StringVar(&f.dockerArchive, "docker-archive", "", "write a 'docker save' archive FILE")
	fs.StringVar(&f.archiveTag, "tag", "scv-hpc/image:latest", "image name recorded in a --docker-archive")
	fs.StringSliceVar(&f.insecure, "insecure-registry", nil, "registry HOST[:PORT] to push to over plain HTTP (loopback always is)")
	return c
}

func runImageBuild(cmd *cobra.Command, a *app, f imageBuildFlags) error {
	outs := 0
	for _, s := range []string{f.push, f.ociLayout, f.dockerArchive} {
		if s != "" {
			outs++
		}
	}
	if outs != 1 {
		return usageError{errors.New("give exactly one of --push REF, --oci-layout DIR[:TAG], --docker-archive FILE")}
	}
	if f.fromDir == "" && len(f.adds) == 0 {
		return usageError{errors.New("nothing to pack: give --from-dir ROOTFS and/or --add SRC:DST")}
	}
	var layout registry.Reference
	if f.ociLayout != "" {
		var err error
		if layout, err = registry.Parse("oci-layout:" + f.ociLayout); err != nil {
			return usageError{fmt.Errorf("--oci-layout: %w", err)}
		}
		if layout.Digest != "" {
			return usageError{fmt.Errorf("--oci-layout %s: give DIR[:TAG], not a digest: the digest of the image is known only once it is built", f.ociLayout)}
		}
	}
	cfg := imagebuild.Config{WorkingDir: f.workdir, Platform: f.platform}
	var err error
	for _, p := range []struct {
		flag  string
		parse func() error
	}{
		{"--entrypoint", func() (err error) { cfg.Entrypoint, err = imagebuild.ParseArgs(f.entrypoint); return }},
		{"--cmd", func() (err error) { cfg.Cmd, err = imagebuild.ParseArgs(f.cmd); return }},
		{"--env", func() (err error) { cfg.Env, err = imagebuild.ParseEnv(f.env); return }},
		{"--label", func() (err error) { cfg.Labels, err = imagebuild.ParseLabels(f.labels); return }},
	} {
		if err := p.parse(); err != nil {
			return usageError{fmt.Errorf("%s %w", p.flag, err)}
		}
	}
	layers, err := buildLayers(a, f)
	if err != nil {
		return err
	}
	img, err := imagebuild.Image(layers, cfg)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("build image: %w", err)
	}
	ctx := cmd.Context()
	switch {
	case f.push != "":
		o := registry.Options{Insecure: f.insecure, Log: a.log, Offline: a.offline, Platform: f.platform}
		if err := imagebuild.Push(ctx, img, f.push, o); err != nil {
			return err
		}
		a.log.Info().Str("ref", f.push).Str("digest", digest.String()).Msg("pushed image")
	case f.ociLayout != "":
		if err := imagebuild.WriteLayout(layout.Path, img, layout.Tag); err != nil {
			return err
		}
		a.log.Info().Str("layout", layout.Path).Str("tag", layout.Tag).Str("digest", digest.String()).Msg("wrote image")
	default:
		if err := imagebuild.WriteDockerArchive(f.dockerArchive, f.archiveTag, img); err != nil {
			return err
		}
		a.log.Info().Str("archive", f.dockerArchive).Str("digest", digest.String()).Msg("wrote image")
	}
	_, err = fmt.Fprintln(a.stdout, digest.String())
	return err
}

// buildLayers makes the layers (imagebuild.Layers) from --from-dir and the --adds.
func buildLayers(a *app, f imageBuildFlags) ([]v1.Layer, error) {
	adds := make([]imagebuild.Add, len(f.adds))
	for i, s := range f.adds {
		add, err := imagebuild.ParseAdd(s)
		if err != nil {
			return nil, usageError{fmt.Errorf("--add %w", err)}
		}
		adds[i] = add
	}
	return imagebuild.Layers(f.fromDir, adds, func(p, why string) {
		a.log.Warn().Str("path", p).Str("reason", why).Msg("left out of the image")
	})
}
