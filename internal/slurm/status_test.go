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

func TestStatusLine(t *testing.T) {
	tests := []struct {
		states map[string]int
		shards int
		tot    results.Totals
		want   string
	}{
		{map[string]int{"done": 10, "partial": 1, "pending": 1}, 12, results.Totals{Inputs: 12000, OK: 11873, Failed: 27, Pending: 100},
			"12 shards: 10 done, 1 partial, 1 pending; 11873/12000 inputs ok, 27 failed, 100 pending"},
		{map[string]int{"done": 1}, 1, results.Totals{Inputs: 5, OK: 5}, "1 shard: 1 done; 5/5 inputs ok, 0 failed, 0 pending"},
		{map[string]int{"failed": 2, "pending": 1}, 3, results.Totals{Inputs: 3, OK: 0, Failed: 2, Pending: 1},
			"3 shards: 2 failed, 1 pending; 0/3 inputs ok, 2 failed, 1 pending"},
	}
	for _, tc := range tests {
		s := &results.Summary{States: tc.states, Shards: make([]results.ShardStatus, tc.shards), Totals: tc.tot}
		if got := StatusLine(s); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}
