package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

func newSubmitCmd(a *app) *cobra.Command {
	var (
		sf             slurmFlags
		rf             runFlags
		df             datasetFlags
		dryRun, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "submit MODEL --data DIR --out DIR",
		Short: "Run a model over a dataset as Slurm job arrays",
		Long: `Submit runs MODEL over every image under --data as Slurm job arrays, one array task
per shard, each running 'scv-hpc run-shard' on a compute node without network access.

Before submitting, the model's SIF must be in the cache that the nodes read (--cache, or
'cache:' in the site config): submit pulls and converts it, or fails under --offline.
The job directory (--out, on a shared file system) records the image digest and SIF
path, so every task runs the same bits. More shards than Slurm's MaxArraySize become
several arrays, each mapped to its shards by an offset.

Defaults come from the site config (/etc/scv-hpc/config.yaml or SCV_HPC_CONFIG); the
batch script comes from the embedded template, or --template / 'template:'. See
docs/slurm.md.`,
		Example: `  scv-hpc submit faces --data /scratch/imgs --out /scratch/run1 --partition gpu --time 2:00:00
  scv-hpc submit faces --data /scratch/imgs --out /scratch/run1 --shards 200 --max-parallel 16 --gpus-per-task 1
  scv-hpc submit faces --data ./imgs --out ./run1 --dry-run      # print the script and sbatch command
  scv-hpc submit faces --data ./imgs --out ./run1 --sbatch-arg=--constraint=a100 --template site.tmpl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dataAbs, outAbs, err := df.paths(cmd, "submit")
			if err != nil {
				return err
			}
			o, tmpl, err := sf.options(cmd, a, a.cfg.Site.SlurmDefaults())
			if err != nil {
				return err
			}
			if rf.scratch != "" && !filepath.IsAbs(rf.scratch) {
				return usageError{fmt.Errorf("--scratch %s: give an absolute path, as the compute nodes see it", rf.scratch)}
			}
			run, err := rf.options(cmd, defaultRun)
			if err != nil {
				return err
			}
			if _, err := os.Stat(job.Dir(outAbs).JobFile()); err == nil {
				return usageError{fmt.Errorf("--out %s already holds a job; use 'scv-hpc resubmit %s' or a new --out", df.out, df.out)}
			}
			model, err := a.ensureModel(ctx, args[0])
			if err != nil {
				return fmt.Errorf("submit: %w", err)
			}
			s, err := df.spec(cmd, a, args[0], model, dataAbs, outAbs, run)
			if err != nil {
				return err
			}
			defer s.List.Close()
			s.Job.Slurm = &job.Slurm{}
			unlock, err := lockJob(outAbs)
			if err != nil {
				return err
			}
			defer unlock()
			j, err := jobsetup.Create(ctx, s)
			if err != nil {
				return setupError("submit", err)
			}
			if o.WantGPU(model.GPU) {
				a.log.Info().Str("model", args[0]).Msg("the model wants a GPU: asking Slurm for one per task (--gpus-per-task 1); set --gres or --gpus-per-task to change")
			}
			o.CacheDir, o.LogLevel = j.Run.CacheDir, a.logLevel
			if err := slurm.SaveOptions(outAbs, o); err != nil {
				return err
			}
			all := make([]int, j.Shards)
			for i := range all {
				all[i] = i
			}
			if err := a.submitShards(cmd, outAbs, j, o, tmpl, all, nil, dryRun, asJSON); err != nil {
				if len(j.Slurm.Arrays) == 0 {
					return fmt.Errorf("%w\nthe job directory %s is kept: fix the cause, then run 'scv-hpc resubmit %s' (its flags override the saved settings)",
						err, df.out, slurm.Quote(df.out))
				}
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	df.register(f, "directory of input images (on a file system the nodes see)", "job directory to create (on a shared file system)")
	// The runner's settings, stored in job.json for every task (as predict's).
	rf.register(f, defaultRun)
	f.BoolVar(&dryRun, "dry-run", false, "write the job directory, print the script and the sbatch command; submit nothing")
	f.BoolVar(&asJSON, "json", false, "print the submission as JSON")
	sf.register(cmd)
	return cmd
}

// submitShards renders and submits arrays over shards of the job directory with
// tmpl (nil: the embedded template) and prints what was done.
func (a *app) submitShards(cmd *cobra.Command, jobDir string, j *job.Job, o *slurm.Options, tmpl *slurm.Template, shards []int, runArgs []string, dryRun, asJSON bool) error {
	res, err := (&slurm.Client{}).SubmitJob(cmd.Context(), slurm.JobRequest{
		JobDir: jobDir, Job: j, Options: o, Template: tmpl, Shards: shards, RunArgs: runArgs, DryRun: dryRun})
	if err != nil {
		return err
	}
	subs, maxArray := res.Arrays, res.MaxArraySize
	if res.MaxArrayErr != nil {
		a.log.Warn().Err(res.MaxArrayErr).Int("max_array_size", maxArray).Msg("dry run: using Slurm's default MaxArraySize")
	}
	if dryRun && !asJSON {
		// The first script in full, then every command.
		b, err := os.ReadFile(subs[0].Script)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "# %s\n%s\n", subs[0].Script, b)
		for _, s := range subs {
			fmt.Fprintln(a.stdout, slurm.QuoteArgs(s.Command))
		}
		fmt.Fprintf(a.stdout, "# dry run: %d shards in %d array(s) (MaxArraySize %d); nothing submitted\n", len(shards), len(subs), maxArray)
		return nil
	}
	if asJSON {
		type arrayOut struct {
			JobID   string   `json:"job_id,omitempty"`
			Script  string   `json:"script"`
			Shards  []int    `json:"shards"`
			Command []string `json:"command"`
		}
		res := struct {
			JobDir string     `json:"job_dir"`
			DryRun bool       `json:"dry_run"`
			Arrays []arrayOut `json:"arrays"`
		}{JobDir: jobDir, DryRun: dryRun}
		for _, s := range subs {
			res.Arrays = append(res.Arrays, arrayOut{s.Array.JobID, s.Script, s.Array.Shards, s.Command})
		}
		return printJSON(a, res)
	}
	ids := make([]string, len(subs))
	for i, s := range subs {
		ids[i] = fmt.Sprintf("%s (%d tasks)", s.Array.JobID, len(s.Array.Shards))
	}
	fmt.Fprintf(a.stdout, "submitted %d shard(s) of %s as job array(s) %s\nfollow with: scv-hpc status %s\n",
		len(shards), jobDir, strings.Join(ids, ", "), slurm.Quote(jobDir))
	return nil
}

// slurmFlags are the Slurm resource flags of submit and resubmit (slurm.RegisterFlags).
type slurmFlags struct{ given slurm.Options }

func (sf *slurmFlags) register(cmd *cobra.Command) { slurm.RegisterFlags(cmd.Flags(), &sf.given) }

// options merges the flags given over base (the site's defaults for submit, slurm.json
// for resubmit), fills the binary and parses the template.
func (sf *slurmFlags) options(cmd *cobra.Command, a *app, base slurm.Options) (*slurm.Options, *slurm.Template, error) {
	o := base
	if err := o.Merge(&sf.given, cmd.Flags().Changed); err != nil {
		return nil, nil, usageError{err}
	}
	if cmd.Flags().Changed("log-level") {
		o.LogLevel = a.logLevel
	}
	tmpl, err := o.Prepare()
	if errors.Is(err, slurm.ErrTemplate) {
		return nil, nil, usageError{err}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w (give --scv-hpc PATH)", err)
	}
	return &o, tmpl, nil
}
