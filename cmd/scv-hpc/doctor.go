package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/doctor"
)

func newDoctorCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what this host can do: runtime, squashfs, GPU, Slurm, cache, offline readiness",
		Long: `doctor checks this host for scv-hpc: apptainer or singularity and user namespaces
(or a setuid install), mksquashfs and unsquashfs, squashfs in the kernel, the NVIDIA
driver, the Slurm client commands and whether the controller answers, the cache
directory (writable? which file system? free space?), the scratch directory, and which
catalog models are cached for offline use. The first lines say where each setting came
from: a flag, the environment, the site config (/etc/scv-hpc/config.yaml or
SCV_HPC_CONFIG) or the default. Each line is ok, warn or fail, and says how
to fix what is not ok. Exit status 1 when a check fails.`,
		Example: `  scv-hpc doctor                           # on a login node
  srun --gres=gpu:1 scv-hpc doctor         # on a GPU compute node
  scv-hpc doctor --cache /shared/scv --json | jq '.[] | select(.status != "ok")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := doctor.Options{CacheDir: a.cfg.Cache, TmpDir: a.cfg.TmpDir}
			cat, err := a.loadCatalog()
			if err != nil {
				a.log.Warn().Err(err).Msg("catalog unreadable: offline readiness not checked")
			} else {
				opts.Catalog = cat
			}
			// Where each setting came from (flag, environment, site config, default),
			// then the host's checks.
			checks := append(doctor.Settings(a.cfg.Settings()), doctor.Run(cmd.Context(), opts)...)
			err = a.render(asJSON, checks, func(w io.Writer) error { return doctor.WriteText(w, checks) })
			if n := doctor.Failed(checks); n > 0 && err == nil {
				return fmt.Errorf("doctor: %d check(s) failed (see the fixes above)", n)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print the checks as a JSON array of {"name","status","detail","fix"}`)
	return cmd
}
