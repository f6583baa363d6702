// Package job defines the job directory, the contract between predict, submit,
// run-shard, status, resubmit and collect:
//
//	OUT/job.json             what runs: model, image digest, SIF, data root, counts, options
//	OUT/job.sbatch           the rendered Slurm script (submit only)
//	OUT/shards/000123.txt    inputs of shard 123, relative to the data root, one per line
//	OUT/results/000123.jsonl one line per input (see package results)
//	OUT/logs/                Slurm and worker logs
package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// FormatVersion is the version of the job.json format written by this scv-hpc.
const FormatVersion = 1

// Job is job.json.
type Job struct {
	Format   int        `json:"format"`
	Tool     string     `json:"tool"` // scv-hpc version that created the job
	Created  time.Time  `json:"created"`
	Model    string     `json:"model"`   // as the user named it
	Ref      string     `json:"ref"`     // image reference it resolved to
	Digest   string     `json:"digest"`  // manifest digest: every task runs these bits
	SIF      string     `json:"sif"`     // absolute path of the SIF in the cache
	Predict  []string   `json:"predict"` // command run inside the container
	GPU      bool       `json:"gpu"`     // the model wants a GPU
	MaxBatch int        `json:"max_batch,omitempty"`
	DataRoot string     `json:"data_root"`         // absolute
	Include  []string   `json:"include,omitempty"` // globs used by the scan
	Shards   int        `json:"shards"`
	Inputs   int64      `json:"inputs"`
	Bytes    int64      `json:"bytes"`
	Skipped  int64      `json:"skipped,omitempty"` // files reported and left out by the scan
	Run      RunOptions `json:"run"`
	Slurm    *Slurm     `json:"slurm,omitempty"`
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

// Paths inside a job directory. OutputsDir holds the files models write besides their
// results (large arrays): it is bound writable at /out and, unlike /scratch, kept.
func File(dir string) string       { return filepath.Join(dir, "job.json") }
func ShardsDir(dir string) string  { return filepath.Join(dir, "shards") }
func ResultsDir(dir string) string { return filepath.Join(dir, "results") }
func LogsDir(dir string) string    { return filepath.Join(dir, "logs") }
func OutputsDir(dir string) string { return filepath.Join(dir, "outputs") }
func ShardFile(dir string, i int) string {
	return filepath.Join(ShardsDir(dir), fmt.Sprintf("%06d.txt", i))
}
func ResultFile(dir string, i int) string {
	return filepath.Join(ResultsDir(dir), fmt.Sprintf("%06d.jsonl", i))
}

// ErrNoJob is returned by Load for a directory without job.json.
var ErrNoJob = errors.New("not a job directory (no job.json)")

// Load reads DIR/job.json.
func Load(dir string) (*Job, error) {
	b, err := os.ReadFile(File(dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w; create one with 'scv-hpc predict' or 'scv-hpc submit'", dir, ErrNoJob)
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

// Save writes DIR/job.json atomically, creating the directory layout.
func Save(dir string, j *Job) error {
	for _, d := range []string{dir, ShardsDir(dir), ResultsDir(dir), LogsDir(dir), OutputsDir(dir)} {
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
