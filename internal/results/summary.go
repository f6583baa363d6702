package results

import (
	"context"
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// Shard states, from no result to every input with one.
const (
	StatePending = "pending" // no input has a result
	StatePartial = "partial" // some inputs have a result, some not
	StateDone    = "done"    // every input has an ok result
	StateFailed  = "failed"  // every input has a result, some failed
)

// ShardStatus counts one shard's inputs by their final state.
type ShardStatus struct {
	Index   int    `json:"index"`
	Inputs  int64  `json:"inputs"`
	OK      int64  `json:"ok"`
	Failed  int64  `json:"failed"`
	Pending int64  `json:"pending"`
	State   string `json:"state"`
}

// Totals add up the inputs of a job (or of a collected output).
type Totals struct {
	Inputs  int64 `json:"inputs"`
	OK      int64 `json:"ok"`
	Failed  int64 `json:"failed"`
	Pending int64 `json:"pending"`
}

// Summary is the state of a whole job from its files.
type Summary struct {
	Job    *job.Job       `json:"job"`
	Shards []ShardStatus  `json:"shards"`
	Totals Totals         `json:"totals"`
	States map[string]int `json:"states"` // shards per state
}

// Summarize reads the job's shard and result files, one shard at a time, and counts
// every input as ok, failed or pending. Result lines for paths that are not in the
// shard are ignored.
func Summarize(jobDir string) (*Summary, error) {
	return SummarizeContext(context.Background(), jobDir)
}

// SummarizeContext is Summarize with a context checked between shards.
func SummarizeContext(ctx context.Context, jobDir string) (*Summary, error) {
	j, err := job.Load(jobDir)
	if err != nil {
		return nil, err
	}
	s := &Summary{Job: j, Shards: make([]ShardStatus, 0, j.Shards), States: map[string]int{}}
	for i := 0; i < j.Shards; i++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("status %s: %w", jobDir, err)
		}
		st, err := shardStatus(jobDir, i)
		if err != nil {
			return nil, err
		}
		s.Shards = append(s.Shards, st)
		s.States[st.State]++
		s.Totals.add(st.Inputs, st.OK, st.Failed, st.Pending)
	}
	return s, nil
}

func (t *Totals) add(inputs, ok, failed, pending int64) {
	t.Inputs += inputs
	t.OK += ok
	t.Failed += failed
	t.Pending += pending
}

func shardStatus(jobDir string, i int) (ShardStatus, error) {
	out, err := Outcomes(job.ResultFile(jobDir, i))
	if err != nil {
		return ShardStatus{}, fmt.Errorf("shard %d: %w", i, err)
	}
	t, err := eachInput(jobDir, i, out, func(ok bool) bool { return ok }, nil)
	st := ShardStatus{Index: i, Inputs: t.Inputs, OK: t.OK, Failed: t.Failed, Pending: t.Pending}
	if err != nil {
		return st, err
	}
	st.State = state(st)
	return st, nil
}

// eachInput goes through the inputs of shard i in shard order, once per path (an
// input listed twice counts once), and counts each as ok or failed by its final
// state in fin, or pending when fin has none. fn, when not nil, is called for each
// input with its entry in fin (found false: pending).
func eachInput[V any](jobDir string, i int, fin map[string]V, isOK func(V) bool, fn func(rel string, v V, found bool) error) (Totals, error) {
	var t Totals
	seen := make(map[string]bool, len(fin))
	err := sharding.ReadShard(jobDir, i, func(rel string) error {
		if seen[rel] {
			return nil
		}
		seen[rel] = true
		v, found := fin[rel]
		switch {
		case !found:
			t.add(1, 0, 0, 1)
		case isOK(v):
			t.add(1, 1, 0, 0)
		default:
			t.add(1, 0, 1, 0)
		}
		if fn == nil {
			return nil
		}
		return fn(rel, v, found)
	})
	return t, err
}

func state(st ShardStatus) string {
	switch {
	case st.Pending == st.Inputs:
		if st.Inputs == 0 {
			return StateDone
		}
		return StatePending
	case st.Pending > 0:
		return StatePartial
	case st.Failed > 0:
		return StateFailed
	}
	return StateDone
}
