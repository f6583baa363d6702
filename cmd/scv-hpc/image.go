package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

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
	var f imagebuild.Flags
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
			digest, err := f.Build(cmd.Context(), registry.Options{Log: a.log, Offline: a.cfg.Offline}, a.log)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, digest)
			return err
		},
	}
	f.AddFlags(c.Flags())
	return c
}
