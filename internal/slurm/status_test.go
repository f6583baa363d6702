package slurm

import (
	"reflect"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/results"
)

func TestPlanResubmit(t *testing.T) {
	sum := &results.Summary{Shards: []results.ShardStatus{
		{Index: 0, Inputs: 3, OK: 3},             // done
		{Index: 1, Inputs: 3, OK: 1, Pending: 2}, // cut short, not queued
		{Index: 2, Inputs: 3, Failed: 1, OK: 2},  // failed input
		{Index: 3, Inputs: 3, Pending: 3},        // still running in Slurm
		{Index: 4, Inputs: 3, Pending: 2, Failed: 1},
	}}
	view := map[int]ShardState{
		1: {Shard: 1, State: StateCancelled}, 3: {Shard: 3, State: StateRunning}, 4: {Shard: 4, State: StatePending},
	}
	for _, tc := range []struct {
		name       string
		failedOnly bool
		want       ResubmitPlan
	}{
		{"missing", false, ResubmitPlan{Shards: []int{1}, Active: []int{3, 4}}},
		{"failed only", true, ResubmitPlan{Shards: []int{2}, Active: []int{4}, RunArgs: []string{"--retry-failed"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := PlanResubmit(sum, view, tc.failedOnly); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("PlanResubmit = %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := PlanResubmit(sum, nil, false); !reflect.DeepEqual(got.Shards, []int{1, 3, 4}) {
		t.Errorf("without Slurm's view: %v", got.Shards)
	}
}
