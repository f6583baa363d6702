package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

func newImageCmd(a *app) *cobra.Command {
	img := &cobra.Command{
		Use:  "image",
		Args: cobra.NoArgs,
	}
	img.AddCommand(newImageBuildCmd(a))
	return img
}

func newImageBuildCmd(a *app) *cobra.Command {
	var f imagebuild.Flags
	c := &cobra.Command{
		Use:  "build (--push REF | --oci-layout DIR[:TAG] | --docker-archive FILE)",
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
