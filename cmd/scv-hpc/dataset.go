package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/fetch"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// defaultRun is what predict and submit hand the runner when no flag says otherwise.
var defaultRun = job.DefaultRunOptions()

// datasetFlags are the flags predict and submit share: the dataset, the job directory
// and how the dataset is cut into shards.
type datasetFlags struct {
	data, out         string
	shardSize, shards int
	include           []string
	fastScan          bool
}

func (d *datasetFlags) register(fs *pflag.FlagSet, dataHelp, outHelp string) {
	fs.StringVar(&d.data, "data", "", dataHelp)
	fs.StringVar(&d.out, "out", "", outHelp)
	fs.IntVar(&d.shardSize, "shard-size", 0, fmt.Sprintf("inputs per shard (default %d)", sharding.DefaultShardSize))
	fs.IntVar(&d.shards, "shards", 0, "number of shards, balanced by bytes (instead of --shard-size)")
	fs.StringSliceVar(&d.include, "include", nil, "file name globs to include (default: common image types); repeatable")
	fs.BoolVar(&d.fastScan, "fast-scan", false, "for millions of files: do not stat each one (no sizes; an unreadable file then fails as its input, not at the scan); not with --shards")
}

// paths checks the flags of command verb and returns the data and job directories as
// absolute paths; the data directory must exist.
func (d *datasetFlags) paths(verb string) (dataAbs, outAbs string, err error) {
	if d.data == "" || d.out == "" {
		return "", "", usageError{fmt.Errorf("%s needs --data DIR and --out DIR", verb)}
	}
	if d.shardSize > 0 && d.shards > 0 {
		return "", "", usageError{errors.New("give either --shard-size or --shards, not both")}
	}
	if d.fastScan && d.shards > 0 {
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

// scan returns the scan options the flags give.
func (d *datasetFlags) scan(log zerolog.Logger) sharding.ScanOptions {
	return sharding.ScanOptions{Include: d.include, NoStat: d.fastScan, Log: log}
}

func (d *datasetFlags) plan() sharding.Plan {
	return sharding.Plan{ShardSize: d.shardSize, Shards: d.shards}
}

// newJob shards the dataset into the job directory outAbs and writes its job.json:
// model m (name as the user gave it), the runner's settings run (with the cache made
// absolute), and s, the Slurm part (nil for predict). verb prefixes errors.
func (a *app) newJob(ctx context.Context, verb, name string, m *fetch.Model, d *datasetFlags, dataAbs, outAbs string, run job.RunOptions, s *job.Slurm) (*job.Job, error) {
	sum, err := sharding.WriteShards(ctx, outAbs, dataAbs, d.scan(a.log), d.plan())
	if errors.Is(err, sharding.ErrBadPlan) {
		return nil, usageError{err}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: shard %s: %w", verb, d.data, err)
	}
	if run.CacheDir, err = filepath.Abs(a.cacheDir); err != nil {
		return nil, err
	}
	j := &job.Job{
		Tool: version.String(), Created: time.Now().UTC(),
		Model: name, Ref: m.Ref, Digest: m.Digest, SIF: m.SIF, Predict: m.Predict, GPU: m.GPU,
		DataRoot: dataAbs, Include: d.include,
		Shards: sum.Shards, Inputs: sum.Inputs, Bytes: sum.Bytes, Skipped: sum.Skipped,
		Run: run, Slurm: s,
	}
	if err := job.Save(outAbs, j); err != nil {
		return nil, err
	}
	a.log.Info().Int("shards", sum.Shards).Int64("inputs", sum.Inputs).Int64("skipped", sum.Skipped).Msg("dataset sharded")
	return j, nil
}
