package slurm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// Shard states as status shows them, from Slurm's job states.
const (
	StatePending   = "pending"   // waiting to start (or requeued)
	StateRunning   = "running"   // running or completing
	StateCompleted = "completed" // the task exited 0
	StateFailed    = "failed"    // non-zero exit, timeout, node failure, out of memory, preempted
	StateCancelled = "cancelled" // scancel
	StateFinished  = "finished"  // Slurm no longer knows the array: trust the results on disk
)

// TaskState is one array task as squeue reports it.
type TaskState struct {
	Task       int    `json:"task"`
	SlurmState string `json:"slurm_state"` // e.g. RUNNING, CANCELLED
	Reason     string `json:"reason,omitempty"`
	State      string `json:"state"` // one of the State constants
}

// Query returns the tasks of one array, one squeue call for the whole array. An
// array Slurm has purged ("Invalid job id specified": it finished more than
// MinJobAge ago) has no tasks.
func (c *Client) Query(ctx context.Context, jobID string) (map[int]TaskState, error) {
	out, err := c.run(ctx, "squeue", "-h", "-r", "-j", jobID, "-t", "all", "-o", "%i %T %r")
	if err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && strings.Contains(ce.Message, "Invalid job id") {
			return nil, nil
		}
		return nil, fmt.Errorf("query array %s: %w", jobID, err)
	}
	tasks, err := parseSqueue(jobID, out)
	if err != nil {
		return nil, fmt.Errorf("query array %s: %w", jobID, err)
	}
	return tasks, nil
}

// Accounting returns the tasks of one array as Slurm's accounting (sacct) last
// recorded them: the final state of tasks that squeue no longer shows. ok is false
// when sacct is not installed, accounting is disabled (AccountingStorageType=none),
// or it knows nothing of the array; callers then trust the results on disk.
func (c *Client) Accounting(ctx context.Context, jobID string) (tasks map[int]TaskState, ok bool) {
	out, err := c.run(ctx, "sacct", "-n", "-P", "-X", "-j", jobID, "-o", "JobID,State")
	if err != nil {
		return nil, false
	}
	tasks, err = parseSacct(jobID, out)
	if err != nil || len(tasks) == 0 {
		return nil, false
	}
	return tasks, true
}

// parseSacct reads "JobID|State" lines of sacct -P: "123_4|COMPLETED",
// "123_1|CANCELLED by 0", "123_[5-9%2]|PENDING".
func parseSacct(jobID string, out []byte) (map[int]TaskState, error) {
	tasks := map[int]TaskState{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		id, state, ok := strings.Cut(sc.Text(), "|")
		if !ok {
			continue
		}
		state, _, _ = strings.Cut(state, "|")
		words := strings.Fields(state) // "CANCELLED by 0"
		if len(words) == 0 || strings.ContainsAny(id, " \t") {
			continue
		}
		if err := addTasks(tasks, jobID, strings.TrimSpace(id), words[0], ""); err != nil {
			return nil, fmt.Errorf("sacct line %q: %w", sc.Text(), err)
		}
	}
	return tasks, sc.Err()
}

// parseSqueue reads "%i %T %r" lines: "123_4 RUNNING None"; a pending
// remainder may be shown as "123_[5-9%2]".
func parseSqueue(jobID string, out []byte) (map[int]TaskState, error) {
	tasks := map[int]TaskState{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		reason := ""
		if len(f) > 2 && f[2] != "None" {
			reason = strings.Join(f[2:], " ")
		}
		if err := addTasks(tasks, jobID, f[0], f[1], reason); err != nil {
			return nil, fmt.Errorf("squeue line %q: %w", sc.Text(), err)
		}
	}
	return tasks, sc.Err()
}

// addTasks records the tasks of one line of squeue or sacct: id is "123_4" or
// "123_[5-9%2]"; an id of another job (a plain job, or a step) is ignored.
func addTasks(tasks map[int]TaskState, jobID, id, slurmState, reason string) error {
	arr, spec, ok := strings.Cut(id, "_")
	if !ok || arr != jobID {
		return nil
	}
	idx, err := expandTasks(spec)
	if err != nil {
		return err
	}
	for _, t := range idx {
		tasks[t] = TaskState{Task: t, SlurmState: slurmState, Reason: reason, State: NormalizeState(slurmState)}
	}
	return nil
}

// expandTasks expands "4", "[5-9%2]" or "[1,3,7-8]" to task indices.
func expandTasks(spec string) ([]int, error) {
	spec = strings.TrimSuffix(strings.TrimPrefix(spec, "["), "]")
	spec, _, _ = strings.Cut(spec, "%")
	var out []int
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad task index %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<20 {
				return nil, fmt.Errorf("bad task range %q", part)
			}
		}
		if len(out)+b-a > 1<<20 {
			return nil, fmt.Errorf("task list %q too long", spec)
		}
		for t := a; t <= b; t++ {
			out = append(out, t)
		}
	}
	return out, nil
}

// NormalizeState maps a Slurm job state to a shard state.
func NormalizeState(s string) string {
	switch strings.TrimSuffix(s, "+") {
	case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED", "SPECIAL_EXIT":
		return StatePending
	case "RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING":
		return StateRunning
	case "COMPLETED":
		return StateCompleted
	case "CANCELLED", "REVOKED":
		return StateCancelled
	default: // FAILED, TIMEOUT, NODE_FAIL, BOOT_FAIL, OUT_OF_MEMORY, DEADLINE, PREEMPTED
		return StateFailed
	}
}

// ShardState is what Slurm says about one shard: the state of the latest
// array task that ran it.
type ShardState struct {
	Shard      int    `json:"shard"`
	State      string `json:"state"` // one of the State constants
	SlurmState string `json:"slurm_state,omitempty"`
	Reason     string `json:"reason,omitempty"`
	JobID      string `json:"job_id"` // "ARRAYID_TASK"
}

// View joins the job's arrays (from job.json) with squeue: for every shard
// that was submitted, the state of its latest task. A job never submitted to
// Slurm gives an empty map.
func (c *Client) View(ctx context.Context, j *job.Job) (map[int]ShardState, error) {
	view := map[int]ShardState{}
	if j.Slurm == nil {
		return view, nil
	}
	for _, a := range j.Slurm.Arrays {
		tasks, err := c.Query(ctx, a.JobID)
		if err != nil {
			return nil, err
		}
		var acct map[int]TaskState // asked once per array, only when squeue lacks a task
		asked := false
		for t, shard := range a.Shards {
			s := ShardState{Shard: shard, State: StateFinished, JobID: fmt.Sprintf("%s_%d", a.JobID, t)}
			ts, ok := tasks[t]
			if !ok {
				if !asked {
					acct, _ = c.Accounting(ctx, a.JobID)
					asked = true
				}
				ts, ok = acct[t]
			}
			if ok {
				s.State, s.SlurmState, s.Reason = ts.State, ts.SlurmState, ts.Reason
			}
			view[shard] = s // later arrays (resubmits) win
		}
	}
	return view, nil
}

// Active reports whether a shard state may still change on its own.
func Active(state string) bool { return state == StatePending || state == StateRunning }

// CancelJob cancels every array of the job in dir (ArrayIDs: a job with none recorded
// is ErrNoArrays) and returns their IDs. Results written so far stay. The job's load
// error is returned as it is (it names the directory, made absolute); the others are
// prefixed "cancel DIR: ".
func (c *Client) CancelJob(ctx context.Context, dir string) ([]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	j, err := job.Load(abs)
	if err != nil {
		return nil, err
	}
	ids, err := ArrayIDs(j)
	if err != nil {
		return nil, fmt.Errorf("cancel %s: %w", dir, err)
	}
	if err := c.Cancel(ctx, ids); err != nil {
		return ids, fmt.Errorf("cancel %s: %w", dir, err)
	}
	return ids, nil
}

// Cancel cancels whole arrays with scancel. Arrays that already ended (or were
// purged) are not an error.
func (c *Client) Cancel(ctx context.Context, jobIDs []string) error {
	if len(jobIDs) == 0 {
		return nil
	}
	_, err := c.run(ctx, "scancel", jobIDs...)
	var ce *CommandError
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	for _, line := range strings.Split(ce.Message, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "already completing or completed") || strings.Contains(line, "Invalid job id") {
			continue
		}
		return fmt.Errorf("scancel %s: %s", strings.Join(jobIDs, " "), ce.Message)
	}
	return nil
}
