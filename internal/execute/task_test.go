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
