package job

import (
	"fmt"
	"path/filepath"
)

// Dir is a job directory: the one place that knows where each of its files lives.
//
//	job.json                  the job (Create writes it once; AddArray appends arrays)
//	slurm.json                the Slurm settings of submit, reused by resubmit
//	job.sbatch, job.N.sbatch  rendered batch scripts of array 0 and N
//	shards/NNNNNN.txt         inputs of a shard, relative to the data root
//	results/NNNNNN.jsonl      one result line per input
//	logs/                     worker-NNNNNN-W.log, Slurm's %A_%a.out, sbatch.log
//	outputs/                  files models keep, bound at /out
//	locks/                    job.lock (one writer of the job), shard-NNNNNN.lock (one run of a shard)
type Dir string

// Path is the directory itself.
func (d Dir) Path() string { return string(d) }

// JobFile is job.json.
func (d Dir) JobFile() string { return filepath.Join(string(d), "job.json") }

// SlurmFile is slurm.json, the Slurm settings submit saved for resubmit.
func (d Dir) SlurmFile() string { return filepath.Join(string(d), "slurm.json") }

// ScriptName is the name of the batch script of the job's n-th array (0: job.sbatch,
// else job.N.sbatch), relative to the directory, as job.json records it.
func ScriptName(n int) string {
	if n == 0 {
		return "job.sbatch"
	}
	return fmt.Sprintf("job.%d.sbatch", n)
}

// Script is the path of the batch script of the n-th array.
func (d Dir) Script(n int) string { return filepath.Join(string(d), ScriptName(n)) }

// ShardsDir is shards/.
func (d Dir) ShardsDir() string { return filepath.Join(string(d), "shards") }

// ShardFile is shards/NNNNNN.txt.
func (d Dir) ShardFile(i int) string { return filepath.Join(d.ShardsDir(), fmt.Sprintf("%06d.txt", i)) }

// ResultsDir is results/.
func (d Dir) ResultsDir() string { return filepath.Join(string(d), "results") }

// ResultFile is results/NNNNNN.jsonl.
func (d Dir) ResultFile(i int) string {
	return filepath.Join(d.ResultsDir(), fmt.Sprintf("%06d.jsonl", i))
}

// LogsDir is logs/.
func (d Dir) LogsDir() string { return filepath.Join(string(d), "logs") }

// WorkerLog is logs/worker-NNNNNN-W.log, the stderr of worker w of shard i.
func (d Dir) WorkerLog(shard, w int) string {
	return filepath.Join(d.LogsDir(), fmt.Sprintf("worker-%06d-%d.log", shard, w))
}

// SbatchLog is logs/sbatch.log: every sbatch command and its answer.
func (d Dir) SbatchLog() string { return filepath.Join(d.LogsDir(), "sbatch.log") }

// SlurmOutput is the sbatch --output pattern, relative to the directory.
const SlurmOutput = "logs/%A_%a.out"

// OutputsDir is outputs/: files models keep besides their results (large arrays),
// bound writable at /out and, unlike /scratch, kept.
func (d Dir) OutputsDir() string { return filepath.Join(string(d), "outputs") }

// LocksDir is locks/.
func (d Dir) LocksDir() string { return filepath.Join(string(d), "locks") }

// JobLock is locks/job.lock, held by whoever creates or writes the job or runs all of
// it (predict, submit, resubmit).
func (d Dir) JobLock() string { return filepath.Join(d.LocksDir(), "job.lock") }

// ShardLock is locks/shard-NNNNNN.lock, held by the run of shard i.
func (d Dir) ShardLock(i int) string {
	return filepath.Join(d.LocksDir(), fmt.Sprintf("shard-%06d.lock", i))
}

// Paths inside a job directory, for callers that hold a string; see Dir.
func File(dir string) string             { return Dir(dir).JobFile() }
func ShardsDir(dir string) string        { return Dir(dir).ShardsDir() }
func ResultsDir(dir string) string       { return Dir(dir).ResultsDir() }
func LogsDir(dir string) string          { return Dir(dir).LogsDir() }
func OutputsDir(dir string) string       { return Dir(dir).OutputsDir() }
func ShardFile(dir string, i int) string { return Dir(dir).ShardFile(i) }
func ResultFile(dir string, i int) string {
	return Dir(dir).ResultFile(i)
}
