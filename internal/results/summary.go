package results

import (
	"context"
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/job"
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
	err = Walk(ctx, jobDir, j.Shards, WalkOptions{}, func(sh *Shard) error {
		st := sh.Status
		s.Shards = append(s.Shards, st)
		s.States[st.State]++
		s.Totals.add(st.Inputs, st.OK, st.Failed, st.Pending)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", jobDir, err)
	}
	return s, nil
}

func (t *Totals) add(inputs, ok, failed, pending int64) {
	t.Inputs += inputs
	t.OK += ok
	t.Failed += failed
	t.Pending += pending
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
