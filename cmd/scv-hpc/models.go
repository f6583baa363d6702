package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
)

func newModelsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:  "models",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := a.loadCatalog()
			if err != nil {
				return err
			}
			views := fetch.DescribeAll(a.openCache(), cat, a.log)
			return cli.Render(a.stdout, asJSON, views, func(w io.Writer) error { return fetch.WriteModels(w, views) })
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.AddCommand(modelsInfoCmd(a))
	return cmd
}

func modelsInfoCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:  "info NAME[@VERSION]",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := a.loadCatalog()
			if err != nil {
				return err
			}
			e, err := cat.Lookup(args[0])
			if err != nil {
				return err
			}
			v := fetch.Describe(a.openCache(), e, a.log)
			return cli.Render(a.stdout, asJSON, v, v.WriteCard)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a card")
	return cmd
}

func newInspectCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:  "inspect SIF|MODEL",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := a.fetchOptions(nil)
			if err != nil {
				return err
			}
			info, err := fetch.Inspect(cmd.Context(), args[0], o)
			if err != nil {
				return a.notCached(args[0], err)
			}
			return cli.Render(a.stdout, asJSON, info, info.WriteText)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
