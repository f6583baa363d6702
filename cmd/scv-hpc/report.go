package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/report"
)

func newReportCmd(a *app) *cobra.Command {
	var out string
	var o report.Options
	cmd := &cobra.Command{
		Use:   "report JOBDIR -o FILE.html",
		Short: "Write one self-contained HTML page showing a job: summary, failures, answers, gallery, timeline",
		Long: `Report reads a job directory and writes one HTML file that opens anywhere, from a
scratch directory or an email: no script, no network fetch (a Content-Security-Policy
forbids both). It shows:

  summary    model, image digest, predict command, runtime, GPUs, inputs ok/failed/
             pending, wall time, throughput, Slurm arrays and nodes
  failures   grouped by stage and message, with counts, example paths and the end
             of the worker's log for load and crash failures
  answers    charts chosen by the shape of the answers: boxes (detections per image,
             box sizes), labels (counts), numbers (histogram), else raw answers
  gallery    thumbnails with the model's boxes drawn on them: a reproducible sample
             (--samples), the inputs with most and fewest detections, failed inputs
  timeline   one bar per shard from its first to its last answer

The results are read in one pass with bounded memory, so millions of inputs are fine.
FILE is replaced atomically; '-o -' writes to stdout.`,
		Example: `  scv-hpc report /scratch/run1 -o run1.html
  scv-hpc report ./run1 -o - --samples 48 > run1.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("report: -o FILE.html is required (or - for stdout)")}
			}
			ro, err := o.FromFlags()
			if err != nil {
				return err
			}
			var st report.Stats
			where, err := fsutil.WriteOutput(out, a.stdout, func(w io.Writer) error {
				st, err = report.Write(cmd.Context(), args[0], w, ro)
				return err
			})
			if err != nil {
				return err
			}
			t := st.Totals
			fmt.Fprintf(a.stderr, "report of %s written to %s: %d inputs (%d ok, %d failed, %d pending), %d thumbnail(s), %d input(s) not shown\n",
				args[0], where, t.Inputs, t.OK, t.Failed, t.Pending, st.Shown, st.NotShown)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "HTML file to write, or - for stdout (required)")
	o.AddFlags(cmd.Flags())
	return cmd
}
