package execute

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// ErrNoShard is returned when an array task names no shard: no index given, an index
// that is not a number or negative, or one past the job's last shard.
var ErrNoShard = errors.New("no such shard")

// ErrNoIndex (with ErrNoShard) is returned when no index is given, by flag or by Slurm.
var ErrNoIndex = errors.New("no array task index")

// ArrayTaskEnv is the variable Slurm sets to the index of an array task.
const ArrayTaskEnv = "SLURM_ARRAY_TASK_ID"

// TaskShard returns the shard an array task runs: offset + index. A nil index means
// none was given: it is then read from $SLURM_ARRAY_TASK_ID through lookup
// (os.LookupEnv in use; unset or empty is ErrNoIndex). Whether the shard exists is
// checked against the job by CheckShard.
func TaskShard(index *int, offset int, lookup func(string) (string, bool)) (int, error) {
	if index == nil {
		v, _ := lookup(ArrayTaskEnv)
		if v == "" {
			return 0, fmt.Errorf("%w: %w given, and $%s is not set", ErrNoShard, ErrNoIndex, ArrayTaskEnv)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%w: $%s=%q is not a number", ErrNoShard, ArrayTaskEnv, v)
		}
		index = &n
	}
	if *index < 0 || offset < 0 {
		return 0, fmt.Errorf("%w: index %d and offset %d must not be negative", ErrNoShard, *index, offset)
	}
	return offset + *index, nil
}

// CheckShard returns ErrNoShard when shard is not one of j's, in dir.
func CheckShard(dir string, j *job.Job, shard int) error {
	if shard >= j.Shards {
		return fmt.Errorf("%w: shard %d does not exist: %s has %d shards", ErrNoShard, shard, dir, j.Shards)
	}
	return nil
}

// LoadTask loads the job in dir and returns it with the shard an array task runs:
// offset + index (TaskShard; a nil index is read through lookup), which must be one
// of the job's (CheckShard). A bad index or shard is ErrNoShard.
func LoadTask(dir string, index *int, offset int, lookup func(string) (string, bool)) (*job.Job, int, error) {
	shard, err := TaskShard(index, offset, lookup)
	if err != nil {
		return nil, 0, err
	}
	j, err := job.Load(dir)
	if err != nil {
		return nil, 0, err
	}
	if err := CheckShard(dir, j, shard); err != nil {
		return nil, 0, err
	}
	return j, shard, nil
}
