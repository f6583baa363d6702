package jobsetup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// ErrBadFlag marks dataset flags that do not go together or cannot be used (a missing
// --data or --out, a zero shard size, an input list that cannot be opened): the command
// line shows it as a usage error.
var ErrBadFlag = errors.New("bad dataset flags")

// Flags are the dataset flags predict and submit share: the dataset, the job directory
// and how the dataset is cut into shards.
type Flags struct {
	Data, Out         string
	ShardSize, Shards int // 0: not given (sharding.DefaultShardSize applies)
	Include           []string
	FastScan          bool
	FilesFrom         string
}

// AddFlags defines the dataset flags on fs; dataHelp and outHelp describe --data and
// --out for the command.
func (f *Flags) AddFlags(fs *pflag.FlagSet, dataHelp, outHelp string) {
	fs.StringVar(&f.Data, "data", "", dataHelp)
	fs.StringVar(&f.Out, "out", "", outHelp)
	fs.IntVar(&f.ShardSize, "shard-size", 0, fmt.Sprintf("inputs per shard, at least 1 (default %d)", sharding.DefaultShardSize))
	fs.IntVar(&f.Shards, "shards", 0, "number of shards, at least 1, balanced by bytes (instead of --shard-size)")
	fs.StringSliceVar(&f.Include, "include", nil, "file name globs to include (default: common image types); repeatable")
	fs.StringVar(&f.FilesFrom, "files-from", "", "run only the inputs listed in FILE (one path a line, or CSV with a path column; - for stdin), relative to --data or absolute inside it")
	fs.BoolVar(&f.FastScan, "fast-scan", false, "for millions of files: do not stat each one (no sizes; an unreadable file then fails as its input, not at the scan); not with --shards")
}

// Spec checks the flags of command verb (changed reports which were given) and
// returns the job they ask for: the data and job directories absolute and checked
// (Dirs), the shard plan and include globs, and the input list opened (--files-from;
// "-" reads stdin), which the caller closes (Spec.List.Close, also when nil). The
// model part of Spec.Job is the caller's. Flags that do not go together are
// ErrBadFlag, as is a data or job directory that is missing or cannot be bound
// (ErrNoDataDir, container.ErrBadBindPath).
func (f *Flags) Spec(verb string, changed func(flag string) bool, stdin io.Reader, log zerolog.Logger) (Spec, error) {
	bad := func(msg string) (Spec, error) { return Spec{}, flagError{errors.New(msg)} }
	switch {
	case f.Data == "" || f.Out == "":
		return bad(verb + " needs --data DIR and --out DIR")
	case changed("shard-size") && f.ShardSize < 1, changed("shards") && f.Shards < 1:
		return bad("--shard-size and --shards must be at least 1")
	case f.ShardSize > 0 && f.Shards > 0:
		return bad("give either --shard-size or --shards, not both")
	case f.FilesFrom != "" && f.Shards > 0:
		return bad("--files-from reads the list once and cannot balance shards by bytes: give a shard size (--shard-size) instead of --shards")
	case f.FastScan && f.Shards > 0:
		return bad("--shards balances shards by bytes and needs the sizes that --fast-scan skips: use --shard-size")
	}
	dataAbs, outAbs, err := Dirs(f.Data, f.Out)
	if errors.Is(err, ErrNoDataDir) || errors.Is(err, container.ErrBadBindPath) {
		return Spec{}, flagError{err}
	}
	if err != nil {
		return Spec{}, err
	}
	s := Spec{
		Dir: outAbs, DataRoot: dataAbs, Include: f.Include, IncludeSet: changed("include"),
		Plan: sharding.Plan{ShardSize: f.ShardSize, Shards: f.Shards}, PlanSet: changed("shard-size") || changed("shards"),
		NoStat: f.FastScan, Log: log,
	}
	if f.FilesFrom != "" {
		if s.List, err = OpenList(f.FilesFrom, stdin); err != nil {
			return Spec{}, flagError{fmt.Errorf("--files-from: %w", err)}
		}
	}
	return s, nil
}

// CheckForSlurm checks, before anything is pulled, that a job for Slurm can be made in
// the job directory dir with the run options run: dir holds no job yet (job.ErrExists:
// resubmit runs an existing one), and the workers' scratch directory, which is a path
// on the compute nodes, is absolute. Both are ErrBadFlag.
func CheckForSlurm(dir string, run job.RunOptions) error {
	if run.Scratch != "" && !filepath.IsAbs(run.Scratch) {
		return flagError{fmt.Errorf("--scratch %s: give an absolute path, as the compute nodes see it", run.Scratch)}
	}
	if _, err := os.Stat(job.Dir(dir).JobFile()); err == nil {
		return flagError{fmt.Errorf("--out %s: %w", dir, job.ErrExists)}
	}
	return nil
}

// flagError is err marked as ErrBadFlag, its text unchanged.
type flagError struct{ error }

func (e flagError) Is(target error) bool { return target == ErrBadFlag }
func (e flagError) Unwrap() error        { return e.error }
