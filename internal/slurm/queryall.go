package slurm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// QueryAll asks squeue once for the tasks of every array of the job (for a live view
// polled every few seconds: one call per poll, whatever the number of arrays and
// tasks). Arrays Slurm has purged have no tasks; no accounting is asked. The result
// maps each submitted shard to the state of its latest task, as View does, with
// StateFinished where squeue no longer lists the task.
func (c *Client) QueryAll(ctx context.Context, j *job.Job) (map[int]ShardState, error) {
	view := map[int]ShardState{}
	if j.Slurm == nil || len(j.Slurm.Arrays) == 0 {
		return view, nil
	}
	ids := make([]string, len(j.Slurm.Arrays))
	for i, a := range j.Slurm.Arrays {
		ids[i] = a.JobID
	}
	out, err := c.run(ctx, "squeue", "-h", "-r", "-j", strings.Join(ids, ","), "-t", "all", "-o", "%i %T %r")
	if err != nil {
		var ce *CommandError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, "Invalid job id") {
			return nil, fmt.Errorf("query arrays %s: %w", strings.Join(ids, ","), err)
		}
		out = nil
	}
	for _, a := range j.Slurm.Arrays {
		tasks, err := parseSqueue(a.JobID, out)
		if err != nil {
			return nil, fmt.Errorf("query array %s: %w", a.JobID, err)
		}
		for t, shard := range a.Shards {
			s := ShardState{Shard: shard, State: StateFinished, JobID: fmt.Sprintf("%s_%d", a.JobID, t)}
			if ts, ok := tasks[t]; ok {
				s.State, s.SlurmState, s.Reason = ts.State, ts.SlurmState, ts.Reason
			}
			view[shard] = s
		}
	}
	return view, nil
}
