package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/scivision-hpc/scv-hpc/docs"
	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/config"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/logging"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
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
		Use:           "scv-hpc",
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
				return cli.UsageError{Err: err}
			}
			a.cfg = cfg
			log, err := logging.New(a.stderr, cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return cli.UsageError{Err: err}
			}
			a.log = log
			if cfg.TmpDir != "" {
				// Children (tar2sqfs, mksquashfs, unsquashfs) and os.CreateTemp honour TMPDIR.
				os.Setenv("TMPDIR", cfg.TmpDir)
			}
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cli.UsageError{Err: err} })

	a.flags.AddFlags(root.PersistentFlags())

	// The commands, in the order help lists them in their groups (cli.Describe).
	cobra.EnableCommandSorting = false
	root.AddCommand(
		newModelsCmd(a), newPullCmd(a), newStageCmd(a), newInspectCmd(a), newCacheCmd(a), newImageCmd(a),
		newPredictCmd(a), newSubmitCmd(a), newRunShardCmd(a), newStatusCmd(a), newResubmitCmd(a),
		newCancelCmd(a), newCollectCmd(a), newReportCmd(a), newDoctorCmd(a), newVersionCmd(a),
	)
	cli.UsageArgs(root)
	cli.Describe(root, commandHelp)
	return root
}

// commandHelp is what each command's --help says: docs/commands.md, embedded.
var commandHelp = func() *docs.Reference {
	ref, err := docs.Commands()
	if err != nil {
		panic(err) // the embedded page is broken: TestEveryCommandDescribed fails
	}
	return ref
}()

// progressFactory picks a progress bar on a terminal, periodic log lines otherwise.
func (a *app) progressFactory() progress.Factory {
	if a.stderrIsTTY && a.cfg.LogFormat != logging.FormatJSON {
		return progress.BarFactory(a.stderr)
	}
	return progress.LogFactory(a.log, 10*time.Second)
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:  "version",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(a.stdout, version.String())
			return err
		},
	}
}

// loadCatalog reads the embedded catalog, the site catalog and the user's --catalog
// and SCV_HPC_CATALOG files.
func (a *app) loadCatalog() (*catalog.Catalog, error) {
	return catalog.Load(a.cfg.Catalogs...)
}

// openCache opens the --cache directory (creating nothing), with progress reports.
func (a *app) openCache() *cache.Cache {
	c := cache.Open(a.cfg.Cache)
	c.Progress = a.progressFactory()
	return c
}

// fetchOptions builds fetch.Options from the resolved configuration and, when given,
// the registry flags of the command (pull, stage). Commands that run models (predict,
// submit) pass nil.
func (a *app) fetchOptions(reg *registry.Options) (fetch.Options, error) {
	cat, err := a.loadCatalog()
	if err != nil {
		return fetch.Options{}, err
	}
	return fetch.Configure(a.cfg, a.openCache(), cat, reg, a.log, a.progressFactory()), nil
}

// givenLogLevel is the --log-level given to cmd, or "" when none was.
func (a *app) givenLogLevel(cmd *cobra.Command) string {
	if cmd.Flags().Changed("log-level") {
		return a.cfg.LogLevel
	}
	return ""
}
