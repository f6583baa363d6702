package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/execute"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
)

func newPredictCmd(a *app) *cobra.Command {
	var (
		rf            job.RunFlags
		df            jobsetup.Flags
		rescan, force bool
	)
	cmd := &cobra.Command{
		Use:   "predict MODEL --data DIR --out DIR",
		Short: "Run a model over a dataset on this machine",
		Long: `Predict runs MODEL over every image under --data on this machine, the same way a
Slurm job does: it fetches the model's SIF (pulling and converting it unless --offline),
writes the job directory --out (job.json, shards/), runs every shard through a pool of
long-lived model processes, and prints a summary. Every input ends as one line in
OUT/results/NNNNNN.jsonl, ok or failed; 'scv-hpc collect OUT' merges them.

Running predict again with the same MODEL, --data and --out resumes: the shards are
reused, inputs that already have a result are skipped, and the run options recorded in
job.json apply unless a flag is given. A job of another image or
predict command, or over other data, is refused (--force moves it aside and starts
anew). When files under --data were added, removed or renamed since, or --shard-size
changed, predict says so; --rescan re-shards and keeps the results of the inputs still
there. One predict per --out at a time: a second one says which run holds it. Each
worker loads the model once for all the shards it runs.

Runtimes: apptainer or singularity when installed (GPUs bound with --nv); otherwise
builtin, a fallback that runs the image in its own namespaces with NO GPU binding
(fine for CPU models on laptops and CI).

Exit status: 0 every input ok, 3 finished with failed inputs, 1 error, 2 usage.`,
		Example: `  scv-hpc predict faces --data ./imgs --out ./run1
  scv-hpc predict faces --data ./imgs --out ./run1 --workers 4 --runtime builtin
  scv-hpc predict plankton-classifier --data /scratch/imgs --out /scratch/run1 --gpus 0,1 --shards 8
  scv-hpc predict oci-layout:./faces-image --data ./imgs --out ./run1 --include '*.png'
  scv-hpc predict faces --data ./imgs --out ./run1 --rescan    # new images were added
  scv-hpc collect ./run1 -o results.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, set := cmd.Context(), cmd.Flags().Changed
			s, err := df.Spec("predict", set, a.stdin, a.log)
			if err != nil {
				return err
			}
			defer s.List.Close()
			ov, err := rf.Override(set)
			if err != nil {
				return err
			}
			run := defaultRun.Apply(ov)
			ro, err := a.runnerOptions(run, ov) // usage errors before any pull
			if err != nil {
				return err
			}
			if s.Job, err = a.newJob(ctx, args[0], run); err != nil {
				return fmt.Errorf("predict: %w", err)
			}
			s.Rescan, s.Force = rescan, force
			start := time.Now()
			res, err := execute.Local(ctx, s, ov, ro)
			var ie *execute.InterruptedError
			if errors.As(err, &ie) {
				return fmt.Errorf("%w; results so far are in %s; run the same command again to resume", err, job.Dir(s.Dir).ResultsDir())
			}
			if err != nil {
				return fmt.Errorf("predict: %w", corruptHint(args[0], err))
			}
			t, run1 := res.Totals, res.Run
			fmt.Fprintf(a.stdout, "%s over %d inputs in %d shard(s): %d ok, %d failed, %d pending (this run: %d ok, %d failed, %d already done; %s)\n",
				args[0], t.Inputs, res.Job.Shards, t.OK, t.Failed, t.Pending, run1.OK, run1.Failed, run1.Skipped, time.Since(start).Round(time.Millisecond))
			fmt.Fprintf(a.stdout, "results in %s; merge with: scv-hpc collect %s -o results.csv\n", job.Dir(s.Dir).ResultsDir(), df.Out)
			if t.Failed > 0 {
				return errInputsFailed
			}
			return nil
		},
	}
	fs := cmd.Flags()
	df.AddFlags(fs, "directory of input images", "job directory (created; an existing one for the same model and data is resumed)")
	rf.AddFlags(fs, defaultRun)
	fs.BoolVar(&rescan, "rescan", false, "re-shard a resumed job whose data or shard plan changed, keeping the results of the inputs still there")
	fs.BoolVar(&force, "force", false, "replace a job of another model or data in --out (the old one is moved to OUT/replaced-TIME/)")
	return cmd
}
