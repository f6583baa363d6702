package main

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/runner"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

func init() {
	register("predict", func(a *app) *cobra.Command {
		var (
			rf runFlags
			df datasetFlags
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
job.json apply unless a flag is given. A different model or data directory is refused;
use a new --out. Each worker loads the model once for all the shards it runs.

Runtimes: apptainer or singularity when installed (GPUs bound with --nv); otherwise
builtin, a fallback that runs the image chrooted in a mount namespace with NO GPU
binding (fine for CPU models on laptops and CI).

Exit status: 0 every input ok, 3 finished with failed inputs, 1 error, 2 usage.`,
			Example: `  scv-hpc predict faces --data ./imgs --out ./run1
  scv-hpc predict faces --data ./imgs --out ./run1 --workers 4 --runtime builtin
  scv-hpc predict plankton-classifier --data /scratch/imgs --out /scratch/run1 --gpus 0,1 --shards 8
  scv-hpc predict oci-layout:./faces-image --data ./imgs --out ./run1 --include '*.png'
  scv-hpc collect ./run1 -o results.csv`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				dataAbs, outAbs, err := df.paths("predict")
				if err != nil {
					return err
				}
				run, ov := rf.options(), rf.override(cmd.Flags())
				ro, err := a.runnerOptions(run, ov) // usage errors before any pull
				if err != nil {
					return err
				}
				model, err := a.ensureModel(ctx, args[0])
				if err != nil {
					return fmt.Errorf("predict: %w", err)
				}
				j, err := a.predictJob(cmd, args[0], model, &df, dataAbs, outAbs, run)
				if err != nil {
					return err
				}
				if j.Run != run { // a resumed job runs with its recorded options
					if ro, err = a.runnerOptions(j.Run.Apply(ov), ov); err != nil {
						return err
					}
				}
				start := time.Now()
				shards := make([]int, j.Shards)
				for i := range shards {
					shards[i] = i
				}
				total, err := runner.RunJob(ctx, outAbs, j, shards, ro)
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("interrupted; results so far are in %s; run the same command again to resume", job.ResultsDir(outAbs))
					}
					return fmt.Errorf("predict: %w", err)
				}
				sum, err := results.Summarize(outAbs)
				if err != nil {
					return err
				}
				t := sum.Totals
				fmt.Fprintf(a.stdout, "%s over %d inputs in %d shard(s): %d ok, %d failed, %d pending (this run: %d ok, %d failed, %d already done; %s)\n",
					args[0], t.Inputs, j.Shards, t.OK, t.Failed, t.Pending, total.OK, total.Failed, total.Skipped, time.Since(start).Round(time.Millisecond))
				fmt.Fprintf(a.stdout, "results in %s; merge with: scv-hpc collect %s -o results.csv\n", job.ResultsDir(outAbs), df.out)
				if t.Failed > 0 {
					return errInputsFailed
				}
				return nil
			},
		}
		fs := cmd.Flags()
		df.register(fs, "directory of input images", "job directory (created; an existing one for the same model and data is resumed)")
		rf.register(fs, defaultRun)
		return cmd
	})
}

// predictJob returns the job in outAbs: the existing one when it is for the same model
// image and data (resume), else a new one, sharded now. A job for other bits or other
// data is refused rather than mixed.
func (a *app) predictJob(cmd *cobra.Command, name string, m *fetch.Model, df *datasetFlags, dataAbs, outAbs string, run job.RunOptions) (*job.Job, error) {
	if old, err := job.Load(outAbs); err == nil {
		switch {
		case old.DataRoot != dataAbs:
			return nil, fmt.Errorf("--out %s holds a job over %s, not %s; use a new --out", outAbs, old.DataRoot, dataAbs)
		case old.Digest != m.Digest || (m.Digest == "" && old.SIF != m.SIF):
			return nil, fmt.Errorf("--out %s holds a job of model %s (%s), not %s (%s); use a new --out", outAbs, old.Model, cmp.Or(old.Digest, old.SIF), name, cmp.Or(m.Digest, m.SIF))
		case cmd.Flags().Changed("include") && !slices.Equal(old.Include, df.include):
			return nil, fmt.Errorf("--out %s was sharded with --include %v, not %v; use a new --out", outAbs, old.Include, df.include)
		}
		if n, err := sharding.CountShards(outAbs); err != nil || n != old.Shards {
			return nil, fmt.Errorf("--out %s: job.json lists %d shards but shards/ holds %d (%v); use a new --out", outAbs, old.Shards, n, err)
		}
		a.log.Info().Str("out", outAbs).Int("shards", old.Shards).Int64("inputs", old.Inputs).Msg("resuming the job in --out")
		return old, nil
	} else if !errors.Is(err, job.ErrNoJob) {
		return nil, err
	}
	return a.newJob(cmd.Context(), "predict", name, m, df, dataAbs, outAbs, run, nil)
}
