package slurm

import (
	"context"
	"fmt"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

// JobStatus is a job's progress: what its results files say per shard, joined with
// what Slurm says about the shards that were submitted (the JSON of 'status --json').
type JobStatus struct {
	JobDir  string         `json:"job_dir"`
	Model   string         `json:"model"`
	Digest  string         `json:"digest,omitempty"`
	Shards  []ShardStatus  `json:"shards"`
	Totals  results.Totals `json:"totals"`
	States  map[string]int `json:"states"`
	Summary string         `json:"summary"`
	// ScanSkipped counts files under the data root that the scan left out
	// (broken or outside links, unreadable files): they are not inputs.
	ScanSkipped int64 `json:"scan_skipped,omitempty"`
	// SlurmError is set when the scheduler could not be asked (the file view stands).
	SlurmError string `json:"slurm_error,omitempty"`
}

// ShardStatus is one shard: its results, and its latest array task (nil: never
// submitted, or Slurm could not be asked).
type ShardStatus struct {
	results.ShardStatus
	Slurm *ShardState `json:"slurm,omitempty"`
}

// Status summarises the results of the job in dir (absolute) and, for a job submitted
// to Slurm, asks the scheduler about its arrays (one squeue per array). A scheduler
// that cannot be asked leaves the file view intact and sets SlurmError.
func (c *Client) Status(ctx context.Context, dir string) (*JobStatus, error) {
	sum, err := results.SummarizeContext(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := &JobStatus{JobDir: dir, Model: sum.Job.Model, Digest: sum.Job.Digest,
		Totals: sum.Totals, States: sum.States, Summary: StatusLine(sum), ScanSkipped: sum.Job.Skipped}
	out.Shards = make([]ShardStatus, len(sum.Shards))
	for i, st := range sum.Shards {
		out.Shards[i].ShardStatus = st
	}
	if sum.Job.Slurm == nil || len(sum.Job.Slurm.Arrays) == 0 {
		return out, nil
	}
	view, err := c.View(ctx, sum.Job)
	if err != nil {
		out.SlurmError = err.Error()
	}
	for i := range out.Shards {
		if v, ok := view[out.Shards[i].Index]; ok {
			out.Shards[i].Slurm = &v
		}
	}
	return out, nil
}

// StatusLine is the one-line summary, for example
// "12 shards: 10 done, 1 partial, 1 pending; 11873/12000 inputs ok, 27 failed, 100 pending".
func StatusLine(s *results.Summary) string {
	var parts []string
	for _, st := range []string{results.StateDone, results.StatePartial, results.StateFailed, results.StatePending} {
		if n := s.States[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	shards := fmt.Sprintf("%d shards", len(s.Shards))
	if len(s.Shards) == 1 {
		shards = "1 shard"
	}
	if len(parts) > 0 {
		shards += ": " + strings.Join(parts, ", ")
	}
	t := s.Totals
	return fmt.Sprintf("%s; %d/%d inputs ok, %d failed, %d pending", shards, t.OK, t.Inputs, t.Failed, t.Pending)
}

// ResubmitPlan is what resubmit runs: Shards to submit, Active ones left alone (still
// pending or running in Slurm), and the extra run-shard arguments.
type ResubmitPlan struct {
	Shards  []int
	Active  []int
	RunArgs []string
}

// PlanResubmit picks the shards to submit again: those with pending inputs (failedOnly:
// with failed inputs, retried with --retry-failed), except the ones whose latest array
// task view still shows pending or running.
func PlanResubmit(sum *results.Summary, view map[int]ShardState, failedOnly bool) ResubmitPlan {
	var p ResubmitPlan
	for _, st := range sum.Shards {
		want := st.Pending > 0
		if failedOnly {
			want = st.Failed > 0
		}
		if !want {
			continue
		}
		if v, ok := view[st.Index]; ok && Active(v.State) {
			p.Active = append(p.Active, st.Index)
			continue
		}
		p.Shards = append(p.Shards, st.Index)
	}
	if failedOnly {
		p.RunArgs = []string{"--retry-failed"}
	}
	return p
}

// PlanJob plans a resubmission of the job j in dir (absolute): Slurm's view of its
// arrays (View) joined with the results on disk (results.SummarizeContext) by
// PlanResubmit.
func (c *Client) PlanJob(ctx context.Context, dir string, j *job.Job, failedOnly bool) (ResubmitPlan, error) {
	view, err := c.View(ctx, j)
	if err != nil {
		return ResubmitPlan{}, err
	}
	sum, err := results.SummarizeContext(ctx, dir)
	if err != nil {
		return ResubmitPlan{}, err
	}
	return PlanResubmit(sum, view, failedOnly), nil
}
