package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

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

	cacheDir     string
	offline      bool
	logLevel     string
	logFormat    string
	catalogFiles []string
	tmpDir       string

	log zerolog.Logger
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr, stderrIsTTY: logging.IsTerminal(stderr), log: zerolog.Nop()}
}

// commandRegistry holds the constructors of the sub-commands; each command file
// registers itself in init, so adding a command never edits this file.
var commandRegistry = map[string]func(*app) *cobra.Command{}

func register(name string, f func(*app) *cobra.Command) { commandRegistry[name] = f }

func defaultCacheDir() string {
	if d := os.Getenv("SCV_HPC_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "scv-hpc")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "scv-hpc")
	}
	return filepath.Join(os.TempDir(), "scv-hpc-cache")
}

func envBool(name string) bool {
	switch strings.ToLower(os.Getenv(name)) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
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
			log, err := logging.New(a.stderr, a.logLevel, a.logFormat)
			if err != nil {
				return usageError{err}
			}
			a.log = log
			if a.tmpDir != "" {
				// Children (mksquashfs, unsquashfs) and os.CreateTemp honour TMPDIR.
				os.Setenv("TMPDIR", a.tmpDir)
			}
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	pf := root.PersistentFlags()
	pf.StringVar(&a.cacheDir, "cache", defaultCacheDir(), "SIF cache directory (env SCV_HPC_CACHE)")
	pf.BoolVar(&a.offline, "offline", envBool("SCV_HPC_OFFLINE"), "never touch the network; resolve models from the cache only (env SCV_HPC_OFFLINE=1)")
	pf.StringVar(&a.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&a.logFormat, "log-format", "auto", "log format: auto (console on a terminal, JSON otherwise), console, json")
	pf.StringSliceVar(&a.catalogFiles, "catalog", nil, "extra catalog YAML file(s) that add or override models (env SCV_HPC_CATALOG, ':'-separated)")
	pf.StringVar(&a.tmpDir, "tmpdir", os.Getenv("TMPDIR"), "scratch directory for conversions (env TMPDIR)")

	names := make([]string, 0, len(commandRegistry))
	for n := range commandRegistry {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		root.AddCommand(commandRegistry[n](a))
	}
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
	if a.stderrIsTTY && a.logFormat != logging.FormatJSON {
		return progress.BarFactory(a.stderr)
	}
	return progress.LogFactory(a.log, 10*time.Second)
}

// catalogPaths returns the extra catalog files from --catalog and SCV_HPC_CATALOG.
func (a *app) catalogPaths() []string {
	paths := append([]string{}, a.catalogFiles...)
	if env := os.Getenv("SCV_HPC_CATALOG"); env != "" {
		for _, p := range filepath.SplitList(env) {
			if p != "" {
				paths = append(paths, p)
			}
		}
	}
	return paths
}

func init() {
	register("version", func(a *app) *cobra.Command {
		return &cobra.Command{
			Use:   "version",
			Short: "Print the scv-hpc version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				_, err := fmt.Fprintln(a.stdout, version.String())
				return err
			},
		}
	})
}
