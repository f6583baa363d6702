package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
)

func newModelsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List the models of the catalog",
		Long: `List the models of the catalog: the embedded default, the site catalog
/etc/scv-hpc/catalog.yaml, and the files given with --catalog or SCV_HPC_CATALOG, which add
models or override them by name. CACHED shows whether the model's SIF is in the cache.`,
		Example: `  scv-hpc models
  scv-hpc models --json | jq -r '.[].name'
  scv-hpc models --catalog site-models.yaml
  scv-hpc models info faces`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := a.loadCatalog()
			if err != nil {
				return err
			}
			views := fetch.DescribeAll(a.openCache(), cat, a.log)
			return a.render(asJSON, views, func(w io.Writer) error { return fetch.WriteModels(w, views) })
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.AddCommand(modelsInfoCmd(a))
	return cmd
}

func modelsInfoCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "info NAME[@VERSION]",
		Short: "Show one model of the catalog as a model card",
		Example: `  scv-hpc models info faces
  scv-hpc models info faces@1.0 --json`,
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
			return a.render(asJSON, v, v.WriteCard)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a card")
	return cmd
}
