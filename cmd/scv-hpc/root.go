package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/internal/config"
	"github.com/scivision-hpc/scv-hpc/internal/logging"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// app holds what every command shares: its I/O streams and the global flags.
// Commands take their I/O from here so that tests can run them and read the output.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrIsTTY    bool

	// The global flags as given; cfg is what they resolve to, with the environment
	// and the site config (set before any command runs).
	flags config.Flags
	cfg   *config.Config

	log zerolog.Logger
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, stderrIsTTY: logging.IsTerminal(stderr), log: zerolog.Nop()}
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "scv-hpc",
		Short: "Run Scivision computer-vision models in bulk on HPC clusters",
		Long: `scv-hpc runs Scivision models, packaged as container images, over large image
datasets: it pulls an image, converts it to a SIF that Apptainer and SingularityCE run,
keeps it in a content-addressed cache that offline compute nodes read, shards the
dataset, and runs the model's predict through a worker pool, on this machine or as
Slurm job arrays.`,
		Example: `  scv-hpc models                                  # what the catalog offers
  scv-hpc pull faces                              # fetch and convert into the cache
  scv-hpc predict faces --data ./imgs --out ./run1
  scv-hpc submit faces --data /scratch/imgs --out /scratch/run1 --partition gpu
  scv-hpc status /scratch/run1 && scv-hpc collect /scratch/run1 -o results.csv`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			a.flags.Set = cmd.Flags().Changed
			cfg, err := config.Resolve(a.flags, os.LookupEnv)
			if err != nil {
				if errors.Is(err, config.ErrSiteConfig) {
					return fmt.Errorf("%w; fix the file, or point %s at another one", err, config.EnvConfig)
				}
				return usageError{err}
			}
			a.cfg = cfg
			log, err := logging.New(a.stderr, cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return usageError{err}
			}
			a.log = log
			if cfg.TmpDir != "" {
				// Children (mksquashfs, unsquashfs) and os.CreateTemp honour TMPDIR.
				os.Setenv("TMPDIR", cfg.TmpDir)
			}
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	a.flags.AddFlags(root.PersistentFlags())

	// The commands, in the order help lists them.
	root.AddCommand(
		newModelsCmd(a), newPullCmd(a), newStageCmd(a), newInspectCmd(a), newCacheCmd(a), newImageCmd(a),
		newPredictCmd(a), newSubmitCmd(a), newRunShardCmd(a), newStatusCmd(a), newResubmitCmd(a),
		newCancelCmd(a), newCollectCmd(a), newReportCmd(a), newDoctorCmd(a), newVersionCmd(a),
	)
	usageArgs(root)
	return root
}

// usageArgs makes a wrong number or kind of arguments a usage error (exit code 2) in
// cmd and every command below it; an unknown sub-command is one too.
func usageArgs(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		// A group such as 'cache': an unknown word after it is not a command, and the
		// group alone prints its help.
		cmd.Args = func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for %q", args[0], c.CommandPath())}
			}
			return nil
		}
		cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	} else if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		usageArgs(c)
	}
}

// progressFactory picks a progress bar on a terminal, periodic log lines otherwise.
func (a *app) progressFactory() progress.Factory {
	if a.stderrIsTTY && a.cfg.LogFormat != logging.FormatJSON {
		return progress.BarFactory(a.stderr)
	}
	return progress.LogFactory(a.log, 10*time.Second)
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the scv-hpc version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(a.stdout, version.String())
			return err
		},
	}
}
