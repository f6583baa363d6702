package execute

import (
	"errors"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// TestTaskShard: the index comes from the flag, else from $SLURM_ARRAY_TASK_ID; the
// offset is added; a missing, malformed or negative index names no shard.
func TestTaskShard(t *testing.T) {
	idx := func(n int) *int { return &n }
	for _, tc := range []struct {
		name   string
		index  *int
		offset int
		env    map[string]string
		want   int
		err    error
	}{
		{"flag", idx(3), 0, nil, 3, nil},
		{"flag beats env", idx(3), 0, map[string]string{ArrayTaskEnv: "7"}, 3, nil},
		{"flag and offset", idx(3), 1000, nil, 1003, nil},
		{"env", nil, 1000, map[string]string{ArrayTaskEnv: "7"}, 1007, nil},
		{"none", nil, 0, nil, 0, ErrNoIndex},
		{"empty env", nil, 0, map[string]string{ArrayTaskEnv: ""}, 0, ErrNoIndex},
		{"env not a number", nil, 0, map[string]string{ArrayTaskEnv: "x"}, 0, ErrNoShard},
		{"negative index", idx(-1), 0, nil, 0, ErrNoShard},
		{"negative offset", idx(1), -5, nil, 0, ErrNoShard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			got, err := TaskShard(tc.index, tc.offset, lookup)
			if got != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("TaskShard = %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
	j := &job.Job{Shards: 4}
	for shard, want := range map[int]error{0: nil, 3: nil, 4: ErrNoShard, 99: ErrNoShard} {
		if err := CheckShard("/j", j, shard); !errors.Is(err, want) {
			t.Errorf("CheckShard(%d) of 4 shards = %v, want %v", shard, err, want)
		}
	}
}

// TestLoadTask: the job is loaded and the task's shard checked against it; a
// directory without a job is job.ErrNoJob.
func TestLoadTask(t *testing.T) {
	dir := t.TempDir()
	if err := job.Create(dir, &job.Job{Model: "m", Shards: 3}); err != nil {
		t.Fatal(err)
	}
	env := func(v string) func(string) (string, bool) { return func(string) (string, bool) { return v, v != "" } }
	idx := func(n int) *int { return &n }
	for _, tc := range []struct {
		name   string
		dir    string
		index  *int
		offset int
		env    string
		want   int
		err    error
	}{
		{"index and offset", dir, idx(1), 1, "", 2, nil},
		{"from Slurm", dir, nil, 0, "2", 2, nil},
		{"past the last shard", dir, idx(0), 3, "", 0, ErrNoShard},
		{"no index", dir, nil, 0, "", 0, ErrNoIndex},
		{"no job", t.TempDir(), idx(0), 0, "", 0, job.ErrNoJob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, shard, err := LoadTask(tc.dir, tc.index, tc.offset, env(tc.env))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("LoadTask: %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || shard != tc.want || j.Shards != 3 {
				t.Errorf("LoadTask = %v, %d, %v; want shard %d", j, shard, err, tc.want)
			}
		})
	}
}
