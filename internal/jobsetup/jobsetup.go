// Package jobsetup makes the job directory a run works in: a new one (the dataset
// scanned and cut into shards, job.json created), or an existing one checked against
// what is asked before it is resumed. It is the resume policy of predict and the job
// creation of predict and submit:
//
//   - a job of another identity (image digest + predict command) is refused with a
//     *job.MismatchError, never mixed; Force moves the old job aside and starts anew;
//   - another data root or --include is refused the same way;
//   - a changed shard plan, or data that changed since the job was created (a file
//     added, removed or renamed), is a *ChangedError; Rescan re-shards the data and
//     keeps the results of the inputs that are still there;
//   - a job whose inputs came from an input list (--files-from) is compared by the
//     list given now: its accepted entries, in order, against the job's inputs. A
//     list job resumed without --files-from is not compared (a scan of the data
//     root would find other inputs); its shards are kept as they are.
//
// Callers hold the job's lock (job.Dir.LockJob) around Open.
package jobsetup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/version"
)

// Spec is the job asked for.
type Spec struct {
	Dir string // absolute job directory
	// Job carries the model part (Model, Ref, Digest, SIF, Predict, GPU), Run and
	// Slurm; the dataset fields are filled in by Create.
	Job      job.Job
	DataRoot string   // absolute
	Include  []string // nil: sharding.DefaultInclude
	// IncludeSet and PlanSet say that Include and Plan were given for this run (a
	// resume checks only what was given).
	IncludeSet bool
	Plan       sharding.Plan
	PlanSet    bool
	NoStat     bool // --fast-scan
	// List, when not nil, gives the inputs instead of a scan of DataRoot
	// (--files-from); Include does not apply to it.
	List *List
	// Rescan re-shards a resumed job whose data or plan changed; Force replaces a job
	// of another identity or data (the old one is moved aside, not deleted).
	Rescan, Force bool
	Log           zerolog.Logger
}

// ErrListNeeded is returned when a job whose inputs came from an input list is to be
// re-sharded without the list: a scan of the data root would find other inputs.
var ErrListNeeded = errors.New("re-sharding it needs the input list")

// ChangedError says that a job's dataset or shard plan is not what it was when the job
// was created.
type ChangedError struct {
	Dir       string
	What      string // "data", "shard plan"
	Then, Now string
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("the %s of the job in %s changed since it was created: %s then, %s now", e.What, e.Dir, e.Then, e.Now)
}

// Outcome says what Open did.
type Outcome string

const (
	Created   Outcome = "created"
	Resumed   Outcome = "resumed"
	Rescanned Outcome = "rescanned"
	Replaced  Outcome = "replaced" // Force: the old job moved aside, a new one created
)

// Open returns the job in s.Dir: created when there is none, else checked against s and
// resumed (see the package doc).
func Open(ctx context.Context, s Spec) (*job.Job, Outcome, error) {
	old, err := job.Load(s.Dir)
	if errors.Is(err, job.ErrNoJob) {
		j, err := Create(ctx, s)
		return j, Created, err
	}
	if err != nil {
		return nil, "", err
	}
	if err := checkSame(s, old); err != nil {
		if !s.Force {
			return nil, "", err
		}
		aside, err := moveAside(s.Dir)
		if err != nil {
			return nil, "", err
		}
		s.Log.Warn().Str("old_job", aside).Msg("replacing the job: the old one is moved aside; starting a new one")
		j, err := Create(ctx, s)
		return j, Replaced, err
	}
	if n, err := sharding.CountShards(s.Dir); err != nil || n != old.Shards {
		return nil, "", fmt.Errorf("job %s: job.json lists %d shards but shards/ holds %d (%v)", s.Dir, old.Shards, n, err)
	}
	changed := checkPlan(s, old)
	if changed == nil {
		if changed, err = checkData(ctx, s, old); err != nil {
			return nil, "", err
		}
	}
	if changed != nil {
		if !s.Rescan {
			return nil, "", changed
		}
		if old.FilesFrom != "" && s.List == nil {
			return nil, "", fmt.Errorf("rescan %s: its inputs came from the list %s: %w", s.Dir, old.FilesFrom, ErrListNeeded)
		}
		j, err := Rescan(ctx, s, old)
		return j, Rescanned, err
	}
	if s.Rescan {
		s.Log.Info().Msg("the data and shard plan are unchanged: nothing to rescan")
	}
	return old, Resumed, nil
}

// checkSame refuses a job of another model, data root or include list.
func checkSame(s Spec, old *job.Job) error {
	if old.DataRoot != s.DataRoot {
		return &job.MismatchError{Dir: s.Dir, What: "data", Have: "data " + old.DataRoot, Want: "data " + s.DataRoot}
	}
	if err := old.CheckIdentity(s.Dir, s.Job.Model, s.Job.Identity()); err != nil {
		return err
	}
	if s.IncludeSet && !slices.Equal(old.Include, s.Include) {
		return &job.MismatchError{Dir: s.Dir, What: "include", Have: fmt.Sprintf("inputs matching %q", old.Include), Want: fmt.Sprintf("%q", s.Include)}
	}
	return nil
}

// checkPlan compares a shard plan given now with the one the job was cut by.
func checkPlan(s Spec, old *job.Job) *ChangedError {
	if !s.PlanSet || (old.ShardSize == 0 && old.ShardCount == 0) {
		return nil
	}
	if s.Plan.ShardSize == old.ShardSize && s.Plan.Shards == old.ShardCount {
		return nil
	}
	return &ChangedError{Dir: s.Dir, What: "shard plan", Then: planText(old.ShardSize, old.ShardCount), Now: planText(s.Plan.ShardSize, s.Plan.Shards)}
}

func planText(size, count int) string {
	if count > 0 {
		return fmt.Sprintf("%d shards balanced by bytes", count)
	}
	return fmt.Sprintf("%d inputs per shard", size)
}

// checkData scans the data again and compares its inputs with the job's.
func checkData(ctx context.Context, s Spec, old *job.Job) (*ChangedError, error) {
	if old.InputsSHA256 == "" {
		return nil, nil // a job.json of an older scv-hpc: nothing to compare with
	}
	if s.List == nil && old.FilesFrom != "" {
		s.Log.Info().Str("files_from", old.FilesFrom).Msg("the job's inputs came from an input list and no list is given now: not compared with the data")
		return nil, nil
	}
	h := sha256.New()
	st, err := scanInputs(ctx, s, old.Include, func(rel string, _ int64) error {
		addInput(h, rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != old.InputsSHA256 {
		return &ChangedError{Dir: s.Dir, What: "data",
			Then: fmt.Sprintf("%d inputs", old.Inputs), Now: fmt.Sprintf("%d inputs (files added, removed or renamed)", st.Inputs)}, nil
	}
	return nil, nil
}

// scanInputs hands fn the inputs: the entries of s.List, else a scan of s.DataRoot.
func scanInputs(ctx context.Context, s Spec, include []string, fn func(rel string, size int64) error) (sharding.ScanStats, error) {
	if s.List == nil {
		st, err := sharding.Scan(ctx, s.DataRoot, scanOptions(s, include), fn)
		if err != nil {
			return st, fmt.Errorf("scan %s: %w", s.DataRoot, err)
		}
		return st, nil
	}
	f, err := s.List.open()
	if err != nil {
		return sharding.ScanStats{}, err
	}
	defer f.Close()
	return sharding.ScanList(ctx, s.DataRoot, f, s.List.Name, scanOptions(s, include), fn)
}

func scanOptions(s Spec, include []string) sharding.ScanOptions {
	return sharding.ScanOptions{Include: include, NoStat: s.NoStat, Log: s.Log}
}

func addInput(h hash.Hash, rel string) {
	h.Write([]byte(rel))
	h.Write([]byte{'\n'})
}

// effectivePlan is the plan WriteShards uses for p (the zero plan is the default size).
func effectivePlan(p sharding.Plan) sharding.Plan {
	if p.ShardSize == 0 && p.Shards == 0 {
		p.ShardSize = sharding.DefaultShardSize
	}
	return p
}

// Create scans the data, writes the shards and creates job.json (job.Create: it fails
// with job.ErrExists when another process created a job there first).
func Create(ctx context.Context, s Spec) (*job.Job, error) {
	j := s.Job
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create job directory: %w", err)
	}
	if err := shard(ctx, s, &j, s.Dir); err != nil {
		return nil, err
	}
	j.Created, j.Tool = time.Now().UTC(), version.String()
	if err := job.Create(s.Dir, &j); err != nil {
		return nil, err
	}
	s.Log.Info().Int("shards", j.Shards).Int64("inputs", j.Inputs).Int64("skipped", j.Skipped).Msg("dataset sharded")
	return &j, nil
}

// shard cuts the data into dir's shards and records the dataset fields in j.
func shard(ctx context.Context, s Spec, j *job.Job, dir string) error {
	var sum sharding.Summary
	var err error
	j.FilesFrom = ""
	if s.List == nil {
		sum, err = sharding.WriteShards(ctx, dir, s.DataRoot, scanOptions(s, s.Include), s.Plan)
	} else {
		var f *os.File
		if f, err = s.List.open(); err != nil {
			return err
		}
		sum, err = sharding.WriteShardsFrom(ctx, dir, s.DataRoot, f, s.List.Name, scanOptions(s, s.Include), s.Plan)
		f.Close()
		j.FilesFrom = s.List.Name
	}
	if err != nil {
		return fmt.Errorf("shard %s: %w", s.DataRoot, err)
	}
	h := sha256.New()
	for i := range sum.Shards {
		if err := sharding.ReadShard(dir, i, func(rel string) error { addInput(h, rel); return nil }); err != nil {
			return err
		}
	}
	p := effectivePlan(s.Plan)
	j.DataRoot, j.Include = s.DataRoot, s.Include
	j.Shards, j.Inputs, j.Bytes, j.Skipped = sum.Shards, sum.Inputs, sum.Bytes, sum.Skipped
	j.ShardSize, j.ShardCount, j.InputsSHA256 = p.ShardSize, p.Shards, hex.EncodeToString(h.Sum(nil))
	return nil
}

// moveAside moves the job files of dir (job.json, slurm.json, shards/, results/) into
// dir/replaced-TIME/, so that nothing is lost, and returns that directory.
func moveAside(dir string) (string, error) {
	d := job.Dir(dir)
	aside := filepath.Join(dir, "replaced-"+time.Now().UTC().Format("20060102T150405.000000000"))
	if err := os.Mkdir(aside, 0o755); err != nil {
		return "", fmt.Errorf("move the old job aside: %w", err)
	}
	for _, p := range []string{d.JobFile(), d.SlurmFile(), d.ShardsDir(), d.ResultsDir()} {
		if err := os.Rename(p, filepath.Join(aside, filepath.Base(p))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("move the old job aside: %w", err)
		}
	}
	return aside, nil
}
