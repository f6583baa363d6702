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
			if o.Samples < 0 || o.MaxFailed < 0 {
				return usageError{errors.New("report: --samples and --max-failed take 0 or more")}
			}
			// 0 means none on the command line; the package reads 0 as its default.
			if o.Samples == 0 {
				o.Samples = -1
			}
			if o.MaxFailed == 0 {
				o.MaxFailed = -1
			}
			var st report.Stats
			write := func(w io.Writer) error {
				var err error
				st, err = report.Write(cmd.Context(), args[0], w, o)
				return err
			}
			var err error
			where := out
			if out == "-" {
				where = "stdout"
				err = write(a.stdout)
			} else {
				err = fsutil.WriteAtomic(out, 0o644, write)
			}
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
	cmd.Flags().IntVar(&o.Samples, "samples", report.DefaultSamples, "inputs shown in the gallery's sample (reproducible choice); 0: none")
	cmd.Flags().IntVar(&o.MaxFailed, "max-failed", report.DefaultMaxFailed, "failed inputs shown in the gallery at most; 0: none")
	return cmd
}
