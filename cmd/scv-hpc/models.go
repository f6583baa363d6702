package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// modelView is one catalog entry with its cache state (fetch.Describe).
type modelView = fetch.CatalogModel

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
			if asJSON {
				return printJSON(a, views)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tGPU\tTASKS\tCACHED\tIMAGE")
			for _, v := range views {
				n := v.Name
				if v.Deprecated != "" {
					n += " (deprecated)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n, dash(v.Version), yesNo(v.GPU),
					dash(strings.Join(v.Tasks, ",")), yesNo(v.Cached), v.Image)
			}
			return tw.Flush()
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
			if asJSON {
				return printJSON(a, v)
			}
			return writeModelCard(a, v)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a card")
	return cmd
}

func writeModelCard(a *app, v modelView) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 1, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("name", v.Name)
	row("version", dash(v.Version))
	row("image", v.Image)
	row("description", dash(v.Description))
	row("tasks", dash(strings.Join(v.Tasks, ", ")))
	row("gpu", yesNo(v.GPU))
	switch {
	case len(v.Command) > 0:
		row("predict", fmt.Sprintf("%s  (from %s)", slurm.QuoteArgs(v.Command), v.From))
	default:
		row("predict", "from the image (label "+fetch.PredictLabel+", else Entrypoint+Cmd); pull it to see")
	}
	row("deprecated", dash(v.Deprecated))
	row("catalog", v.Source)
	if v.Cached {
		row("cached", v.Digest)
		row("sif", v.SIF)
	} else {
		row("cached", "no (run 'scv-hpc pull "+v.ID+"')")
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
