package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

func newCollectCmd(a *app) *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "collect JOBDIR -o FILE",
		Short: "Merge a job's results into one JSONL or CSV file, one line per input",
		Long: `Collect writes one line per input of the job, in shard order: the final result of
each input (a later ok result of a retry wins over an earlier failure), failed inputs with
their error and stage (predict, timeout, crash), and inputs without any result
yet as ok=false with stage "pending", so nothing is silently missing.

The format follows the extension of FILE (.jsonl or .csv); --format overrides it, and
'-o -' writes to stdout (JSONL unless --format csv). FILE is replaced atomically: a reader
never sees half of it. CSV columns: path, ok, stage, error, ms, result (the model's JSON);
text cells are double-quoted, and a cell starting with =, +, -, @, a tab or a carriage
return gets a leading ' so that a spreadsheet shows it instead of running it as a formula.

Exit status 3 when any input failed or is still pending, with a summary on stderr.`,
		Example: `  scv-hpc collect /scratch/run1 -o results.jsonl
  scv-hpc collect /scratch/run1 -o results.csv
  scv-hpc collect /scratch/run1 -o - | jq 'select(.ok|not)'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("collect: -o FILE is required (.jsonl or .csv, or - for stdout)")}
			}
			f, err := results.FormatFor(out, format)
			if err != nil {
				return err
			}
			dir := args[0]
			if out != "-" {
				if err := job.Dir(dir).CheckOutput(out); err != nil {
					return usageError{fmt.Errorf("collect -o %s: %w; write the merged results elsewhere", out, err)}
				}
			}
			var tot results.Totals
			where, err := fsutil.WriteOutput(out, a.stdout, func(w io.Writer) error {
				tot, err = results.Collect(cmd.Context(), dir, w, f)
				return err
			})
			if err != nil {
				return fmt.Errorf("collect %s: %w", dir, err)
			}
			fmt.Fprintf(a.stderr, "collected %d inputs of %s into %s: %d ok, %d failed, %d pending\n",
				tot.Inputs, dir, where, tot.OK, tot.Failed, tot.Pending)
			if j, err := job.Load(dir); err == nil && j.Skipped > 0 {
				fmt.Fprintf(a.stderr, "note: the scan of the data left out %d file(s) (unreadable, broken or outside links); they are not inputs of this job\n", j.Skipped)
			}
			if tot.Failed > 0 || tot.Pending > 0 {
				if tot.Pending > 0 {
					fmt.Fprintf(a.stderr, "pending inputs have no result yet (see 'scv-hpc status %s'): 'scv-hpc resubmit %s' runs them on Slurm, 'scv-hpc run-shard %s --index I' here\n", dir, dir, dir)
				}
				return errInputsFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file: .jsonl or .csv, or - for stdout (required)")
	cmd.Flags().StringVar(&format, "format", "", "output format, jsonl or csv (default: from the extension of -o)")
	return cmd
}
