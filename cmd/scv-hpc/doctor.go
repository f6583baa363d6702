package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/doctor"
)

func newDoctorCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:  "doctor",
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
			err = cli.Render(a.stdout, asJSON, checks, func(w io.Writer) error { return doctor.WriteText(w, checks) })
			if n := doctor.Failed(checks); n > 0 && err == nil {
				return fmt.Errorf("doctor: %d check(s) failed (see the fixes above)", n)
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print the checks as a JSON array of {"name","status","detail","fix"}`)
	return cmd
}
