// Package job defines the job directory, the contract between predict, submit,
// run-shard, status, resubmit and collect: job.json (what runs: model, image digest,
// SIF, predict command and identity, data root, counts, options, Slurm arrays), and
// through Dir every other path (slurm.json, job.N.sbatch, shards/, results/, logs/,
// outputs/, locks/). job.json is written whole once (Create); after that only AddArray
// records Slurm arrays. Job and shard locks (Dir.LockJob, Dir.LockShard) keep one run
// per job directory and per shard, across nodes.
package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// FormatVersion is the version of the job.json format written by this scv-hpc.
const FormatVersion = 1

// Job is job.json.
type Job struct {
	Format  int       `json:"format"`
	Tool    string    `json:"tool"` // scv-hpc version that created the job
	Created time.Time `json:"created"`
	Model   string    `json:"model"`   // as the user named it
	Ref     string    `json:"ref"`     // image reference it resolved to
	Digest  string    `json:"digest"`  // manifest digest: every task runs these bits
	SIF     string    `json:"sif"`     // absolute path of the SIF in the cache
	Predict []string  `json:"predict"` // command run inside the container
	// IdentityKey is Identity().Key() when the job was created: digest + predict.
	IdentityKey string   `json:"identity,omitempty"`
	GPU         bool     `json:"gpu"` // the model wants a GPU
	MaxBatch    int      `json:"max_batch,omitempty"`
	DataRoot    string   `json:"data_root"`         // absolute
	Include     []string `json:"include,omitempty"` // globs used by the scan
	Shards      int      `json:"shards"`
	Inputs      int64    `json:"inputs"`
	Bytes       int64    `json:"bytes"`
	Skipped     int64    `json:"skipped,omitempty"` // files reported and left out by the scan
	// ShardSize and ShardCount are the plan the shards were cut by (--shard-size or
	// --shards; one is 0). InputsSHA256 hashes the list of inputs in
	// shard order (sorted for a scan), so that a resume sees a changed dataset.
	ShardSize    int    `json:"shard_size,omitempty"`
	ShardCount   int    `json:"shard_count,omitempty"`
	InputsSHA256 string `json:"inputs_sha256,omitempty"`
	// FilesFrom names the input list (--files-from) the inputs came from, in list
	// order, instead of a scan of DataRoot ("stdin" for a list read from stdin).
	FilesFrom string     `json:"files_from,omitempty"`
	Run       RunOptions `json:"run"`
	Slurm     *Slurm     `json:"slurm,omitempty"`
}

// RunOptions are the runner's settings, handed to every shard run; defaults and
// overrides are in options.go.
type RunOptions struct {
	Workers     int      `json:"workers,omitempty"` // 0: one per GPU, else one
	GPUs        string   `json:"gpus,omitempty"`    // "", "auto", "none" or a list "0,1"
	Runtime     string   `json:"runtime"`           // auto|apptainer|singularity|builtin
	ItemTimeout Duration `json:"item_timeout"`
	Retries     int      `json:"retries"`
	LoadTimeout Duration `json:"load_timeout,omitempty"`
	CacheDir    string   `json:"cache_dir,omitempty"` // cache that the nodes read
	Scratch     string   `json:"scratch,omitempty"`   // base of the workers' /scratch on the nodes; "" = a temporary directory
}

// Slurm records submissions of the job (submit and resubmit append arrays).
type Slurm struct {
	MaxArraySize int     `json:"max_array_size"`
	Arrays       []Array `json:"arrays"`
}

// Array is one sbatch submission: its tasks 0..len(Shards)-1 map to Shards[task].
type Array struct {
	JobID     string    `json:"job_id"` // from sbatch --parsable
	Cluster   string    `json:"cluster,omitempty"`
	Script    string    `json:"script"` // path of the rendered script, relative to the job dir
	Shards    []int     `json:"shards"`
	Submitted time.Time `json:"submitted"`
}

// Duration is a time.Duration that reads and writes as "30s".
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ErrNoJob is returned by Load for a directory without job.json.
var ErrNoJob = errors.New("not a job directory (no job.json)")

// Load reads DIR/job.json.
func Load(dir string) (*Job, error) {
	b, err := os.ReadFile(File(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", dir, err)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("read job %s: job.json is corrupt: %w", dir, err)
	}
	if j.Format > FormatVersion {
		return nil, fmt.Errorf("read job %s: job.json format %d is newer than this scv-hpc understands (%d); upgrade scv-hpc", dir, j.Format, FormatVersion)
	}
	return &j, nil
}

// Save writes DIR/job.json atomically, creating the directory layout. Commands do not
// call it: Create writes a new job once, AddArray records submissions; tests use it to
// make job directories.
func Save(dir string, j *Job) error {
	d := Dir(dir)
	for _, d := range []string{dir, d.ShardsDir(), d.ResultsDir(), d.LogsDir(), d.OutputsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create job directory: %w", err)
		}
	}
	if j.Format == 0 {
		j.Format = FormatVersion
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	return fsutil.WriteFileAtomic(File(dir), append(b, '\n'), 0o644)
}

// ErrExists is returned by Create when the directory already holds a job.
var ErrExists = errors.New("already holds a job (job.json)")

// Create writes j as DIR/job.json, the job's first and only full write: it fails with
// ErrExists when job.json exists, even when another process creates it at the same
// moment (the file is linked into place, which is atomic and exclusive). It records
// the identity key and the format, and creates the directory layout.
func Create(dir string, j *Job) error {
	d := Dir(dir)
	for _, p := range []string{dir, d.ShardsDir(), d.ResultsDir(), d.LogsDir(), d.OutputsDir()} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fmt.Errorf("create job directory: %w", err)
		}
	}
	if j.Format == 0 {
		j.Format = FormatVersion
	}
	j.IdentityKey = j.Identity().Key()
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	f, err := os.CreateTemp(dir, ".job.json-*")
	if err != nil {
		return fmt.Errorf("create job %s: %w", dir, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("create job %s: %w", dir, err)
	}
	if err := os.Link(tmp, d.JobFile()); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: %w", dir, ErrExists)
		}
		return fmt.Errorf("create job %s: %w", dir, err)
	}
	return fsutil.SyncDir(dir)
}

// AddArray records a submitted array in job.json: it reads the file again, appends a,
// and replaces it atomically; j (the caller's copy) gets the array too. maxArraySize
// is recorded when set. Callers hold the job lock (Dir.LockJob).
func AddArray(dir string, j *Job, maxArraySize int, a Array) error {
	cur, err := Load(dir)
	if err != nil {
		return err
	}
	if cur.IdentityKey != j.IdentityKey || cur.Digest != j.Digest {
		return fmt.Errorf("record array in %s: job.json changed under us (another job was created there)", dir)
	}
	for _, x := range []*Job{cur, j} {
		if x.Slurm == nil {
			x.Slurm = &Slurm{}
		}
		if maxArraySize > 0 {
			x.Slurm.MaxArraySize = maxArraySize
		}
	}
	cur.Slurm.Arrays = append(cur.Slurm.Arrays, a)
	j.Slurm.Arrays = append(j.Slurm.Arrays, a)
	return Save(dir, cur)
}
