package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

func newCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel JOBDIR",
		Short: "Cancel the Slurm arrays of a submitted job",
		Long: `Cancel runs scancel on every job array recorded in JOBDIR/job.json. Results written so
far stay; 'scv-hpc resubmit JOBDIR' later runs only what is missing.`,
		Example: `  scv-hpc cancel /scratch/run1
  scv-hpc status /scratch/run1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, j, err := loadJobDir(args[0])
			if err != nil {
				return err
			}
			if j.Slurm == nil || len(j.Slurm.Arrays) == 0 {
				return errors.New("cancel: " + args[0] + " was never submitted to Slurm (no arrays in job.json)")
			}
			ids := make([]string, len(j.Slurm.Arrays))
			for i, arr := range j.Slurm.Arrays {
				ids[i] = arr.JobID
			}
			if err := (&slurm.Client{}).Cancel(cmd.Context(), ids); err != nil {
				return fmt.Errorf("cancel %s: %w", args[0], err)
			}
			fmt.Fprintf(a.stdout, "cancelled job array(s) %s; results so far are kept: 'scv-hpc resubmit %s' runs what is missing\n",
				strings.Join(ids, ", "), slurm.Quote(args[0]))
			return nil
		},
	}
}
