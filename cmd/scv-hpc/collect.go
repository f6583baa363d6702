package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/report"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

func newCollectCmd(a *app) *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:  "collect JOBDIR -o FILE",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return cli.Usagef("collect: -o FILE is required (.jsonl or .csv, or - for stdout)")
			}
			name := args[0]
			tot, err := results.CollectTo(cmd.Context(), name, out, format, a.stdout)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "collected %d inputs of %s into %s: %d ok, %d failed, %d pending\n",
				tot.Inputs, name, tot.Where, tot.OK, tot.Failed, tot.Pending)
			if tot.Skipped > 0 {
				fmt.Fprintf(a.stderr, "note: the scan of the data left out %d file(s) (unreadable, broken or outside links); they are not inputs of this job\n", tot.Skipped)
			}
			if tot.Failed > 0 || tot.Pending > 0 {
				if tot.Pending > 0 {
					fmt.Fprintf(a.stderr, "pending inputs have no result yet (see 'scv-hpc status %s'): 'scv-hpc resubmit %s' runs them on Slurm, 'scv-hpc run-shard %s --index I' here\n", shellWord(name), shellWord(name), shellWord(name))
				}
				return cli.ErrInputsFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file: .jsonl or .csv, or - for stdout (required)")
	cmd.Flags().StringVar(&format, "format", "", "output format, jsonl or csv (default: from the extension of -o)")
	return cmd
}

func newReportCmd(a *app) *cobra.Command {
	var out string
	var o report.Options
	cmd := &cobra.Command{
		Use:  "report JOBDIR -o FILE.html",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return cli.Usagef("report: -o FILE.html is required (or - for stdout)")
			}
			ro, err := o.FromFlags()
			if err != nil {
				return err
			}
			st, err := report.WriteTo(cmd.Context(), args[0], out, a.stdout, ro)
			if err != nil {
				return err
			}
			t := st.Totals
			fmt.Fprintf(a.stderr, "report of %s written to %s: %d inputs (%d ok, %d failed, %d pending), %d thumbnail(s), %d input(s) not shown\n",
				args[0], st.Where, t.Inputs, t.OK, t.Failed, t.Pending, st.Shown, st.NotShown)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "HTML file to write, or - for stdout (required)")
	o.AddFlags(cmd.Flags())
	return cmd
}
