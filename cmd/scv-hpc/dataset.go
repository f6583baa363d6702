package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/jobsetup"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// datasetFlags are the flags predict and submit share: the dataset, the job directory
// and how the dataset is cut into shards.
type datasetFlags struct {
	data, out         string
	shardSize, shards int
	include           []string
	fastScan          bool
	filesFrom         string
}

func (d *datasetFlags) register(fs *pflag.FlagSet, dataHelp, outHelp string) {
	fs.StringVar(&d.data, "data", "", dataHelp)
	fs.StringVar(&d.out, "out", "", outHelp)
	fs.IntVar(&d.shardSize, "shard-size", 0, fmt.Sprintf("inputs per shard, at least 1 (default %d)", sharding.DefaultShardSize))
	fs.IntVar(&d.shards, "shards", 0, "number of shards, at least 1, balanced by bytes (instead of --shard-size)")
	fs.StringSliceVar(&d.include, "include", nil, "file name globs to include (default: common image types); repeatable")
	fs.StringVar(&d.filesFrom, "files-from", "", "run only the inputs listed in FILE (one path a line, or CSV with a path column; - for stdin), relative to --data or absolute inside it")
	fs.BoolVar(&d.fastScan, "fast-scan", false, "for millions of files: do not stat each one (no sizes; an unreadable file then fails as its input, not at the scan); not with --shards")
}

// paths checks the flags of command verb and returns the data and job directories as
// absolute paths; the data directory must exist.
func (d *datasetFlags) paths(cmd *cobra.Command, verb string) (dataAbs, outAbs string, err error) {
	set := cmd.Flags().Changed
	switch {
	case d.data == "" || d.out == "":
		return "", "", usageError{fmt.Errorf("%s needs --data DIR and --out DIR", verb)}
	case set("shard-size") && d.shardSize < 1, set("shards") && d.shards < 1:
		return "", "", usageError{errors.New("--shard-size and --shards must be at least 1")}
	case d.shardSize > 0 && d.shards > 0:
		return "", "", usageError{errors.New("give either --shard-size or --shards, not both")}
	case d.filesFrom != "" && d.shards > 0:
		return "", "", usageError{errors.New("--files-from reads the list once and cannot balance shards by bytes: give a shard size (--shard-size) instead of --shards")}
	case d.fastScan && d.shards > 0:
		return "", "", usageError{errors.New("--shards balances shards by bytes and needs the sizes that --fast-scan skips: use --shard-size")}
	}
	if dataAbs, err = filepath.Abs(d.data); err != nil {
		return "", "", err
	}
	if fi, err := os.Stat(dataAbs); err != nil || !fi.IsDir() {
		return "", "", usageError{fmt.Errorf("--data %s: not a readable directory", d.data)}
	}
	if outAbs, err = filepath.Abs(d.out); err != nil {
		return "", "", err
	}
	// Both are bound into the containers (/data, and OUT/outputs at /out): a path that
	// cannot be bound would fail only once the model starts, after pulling and sharding.
	if err := container.CheckBindPath("--data", dataAbs); err != nil {
		return "", "", usageError{err}
	}
	if err := container.CheckBindPath("--out", outAbs); err != nil {
		return "", "", usageError{err}
	}
	return dataAbs, outAbs, nil
}

// spec is the job the flags ask for, of model m (named name by the user). The caller
// closes its List.
func (d *datasetFlags) spec(cmd *cobra.Command, a *app, name string, m *fetch.Model, dataAbs, outAbs string, run job.RunOptions) (jobsetup.Spec, error) {
	var err error
	if run.CacheDir, err = filepath.Abs(a.cacheDir); err != nil {
		return jobsetup.Spec{}, err
	}
	set := cmd.Flags().Changed
	s := jobsetup.Spec{
		Dir: outAbs, DataRoot: dataAbs, Include: d.include, IncludeSet: set("include"),
		Plan: sharding.Plan{ShardSize: d.shardSize, Shards: d.shards}, PlanSet: set("shard-size") || set("shards"),
		NoStat: d.fastScan, Log: a.log,
		Job: job.Job{Model: name, Ref: m.Ref, Digest: m.Digest, SIF: m.SIF, Predict: m.Predict, GPU: m.GPU, Run: run},
	}
	if d.filesFrom != "" {
		// The caller closes s.List (a list on stdin is kept in a temporary file).
		if s.List, err = jobsetup.OpenList(d.filesFrom, a.stdin); err != nil {
			return jobsetup.Spec{}, usageError{err}
		}
	}
	return s, nil
}

// lockJob takes the job lock of dir, creating dir: one predict, submit or resubmit of
// a job directory at a time.
func lockJob(dir string) (job.Unlock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the job directory: %w", err)
	}
	return job.Dir(dir).LockJob()
}

// setupError maps job set-up errors: a bad plan or include is a usage error.
func setupError(verb string, err error) error {
	if errors.Is(err, sharding.ErrBadPlan) || errors.Is(err, sharding.ErrBadInclude) {
		return usageError{err}
	}
	return fmt.Errorf("%s: %w", verb, err)
}
