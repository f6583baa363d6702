package slurm

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlanArrays(t *testing.T) {
	seq := func(a, n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = a + i
		}
		return s
	}
	cases := []struct {
		name    string
		shards  []int
		max     int
		sizes   []int
		offsets []int
		listed  []bool
	}{
		{"one array", seq(0, 10), 1001, []int{10}, []int{0}, []bool{false}},
		{"exactly max", seq(0, 1001), 1001, []int{1001}, []int{0}, []bool{false}},
		{"max plus one", seq(0, 1002), 1001, []int{1001, 1}, []int{0, 1001}, []bool{false, false}},
		{"10000 shards", seq(0, 10000), 1001, []int{1001, 1001, 1001, 1001, 1001, 1001, 1001, 1001, 1001, 991}, []int{0, 1001, 2002, 3003, 4004, 5005, 6006, 7007, 8008, 9009}, nil},
		{"high shard numbers", seq(5000, 3), 10, []int{3}, []int{5000}, []bool{false}},
		{"gaps are listed", []int{1, 2, 7, 8, 9}, 3, []int{3, 2}, []int{0, 8}, []bool{true, false}},
		{"zero max uses default", seq(0, 1002), 0, []int{1001, 1}, []int{0, 1001}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			chunks := PlanArrays(tc.shards, tc.max)
			var sizes, offsets []int
			var listed []bool
			var all []int
			for _, c := range chunks {
				sizes = append(sizes, len(c.Shards))
				offsets = append(offsets, c.Offset())
				listed = append(listed, c.Listed)
				all = append(all, c.Shards...)
				max := tc.max
				if max == 0 {
					max = DefaultMaxArraySize
				}
				if len(c.Shards) > max {
					t.Errorf("array of %d tasks: indices reach MaxArraySize %d", len(c.Shards), max)
				}
			}
			if !reflect.DeepEqual(sizes, tc.sizes) || !reflect.DeepEqual(offsets, tc.offsets) {
				t.Errorf("sizes %v offsets %v, want %v %v", sizes, offsets, tc.sizes, tc.offsets)
			}
			if tc.listed != nil && !reflect.DeepEqual(listed, tc.listed) {
				t.Errorf("listed %v, want %v", listed, tc.listed)
			}
			if !reflect.DeepEqual(all, tc.shards) {
				t.Errorf("shards lost or reordered")
			}
		})
	}
	if got := ArraySpec(10, 2); got != "0-9%2" {
		t.Errorf("ArraySpec = %s", got)
	}
	if got := ArraySpec(1, 0); got != "0-0" {
		t.Errorf("ArraySpec = %s", got)
	}
}

func TestParseSqueue(t *testing.T) {
	out := "77_3 RUNNING None\n77_[4-6%2] PENDING JobArrayTaskLimit\n77_0 COMPLETED None\n77_1 CANCELLED+ None\n77_2 FAILED NonZeroExitCode\n78 RUNNING None\n"
	got, err := parseSqueue("77", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{0: StateCompleted, 1: StateCancelled, 2: StateFailed, 3: StateRunning, 4: StatePending, 5: StatePending, 6: StatePending}
	if len(got) != len(want) {
		t.Fatalf("got %d tasks, want %d: %v", len(got), len(want), got)
	}
	for task, state := range want {
		if got[task].State != state {
			t.Errorf("task %d: %q, want %q", task, got[task].State, state)
		}
	}
	if got[4].Reason != "JobArrayTaskLimit" || got[2].SlurmState != "FAILED" {
		t.Errorf("reason/state: %+v %+v", got[4], got[2])
	}
	if _, err := parseSqueue("77", []byte("77_[x-1] PENDING None\n")); err == nil {
		t.Error("bad range accepted")
	}
}

func FuzzParseSqueue(f *testing.F) {
	f.Add("77_3 RUNNING None\n77_[4-6,9%2] PENDING JobArrayTaskLimit\n")
	f.Add("77_[0-99999999] PENDING x\n")
	f.Fuzz(func(t *testing.T, s string) {
		tasks, err := parseSqueue("77", []byte(s))
		if err == nil {
			for k, v := range tasks {
				if k < 0 || v.Task != k || v.State == "" {
					t.Fatalf("bad task %d: %+v", k, v)
				}
			}
		}
	})
}

func TestParseMaxArraySize(t *testing.T) {
	cases := map[string]int{
		"Configuration data as of x\nMaxArraySize            = 5000\nMaxJobCount = 10000\n": 5000,
		"MaxJobCount = 10000\n": DefaultMaxArraySize,
	}
	for in, want := range cases {
		got, err := parseMaxArraySize([]byte(in))
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	if _, err := parseMaxArraySize([]byte("MaxArraySize = lots\n")); err == nil {
		t.Error("bad MaxArraySize accepted")
	}
}

func TestParseParsable(t *testing.T) {
	for in, want := range map[string][2]string{"123\n": {"123", ""}, "123;cluster1\n": {"123", "cluster1"}, "sbatch: warning: x\n456\n": {"456", ""}} {
		id, cl, err := parseParsable([]byte(in))
		if err != nil || id != want[0] || cl != want[1] {
			t.Errorf("%q: %q %q %v", in, id, cl, err)
		}
	}
	for _, bad := range []string{"", "Submitted batch job 5", "x;y"} {
		if _, _, err := parseParsable([]byte(bad)); err == nil || !strings.Contains(err.Error(), "not a job id") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestNormalizeState(t *testing.T) {
	for in, want := range map[string]string{"PENDING": StatePending, "REQUEUED": StatePending, "RUNNING": StateRunning, "COMPLETING": StateRunning,
		"COMPLETED": StateCompleted, "CANCELLED+": StateCancelled, "TIMEOUT": StateFailed, "NODE_FAIL": StateFailed, "OUT_OF_MEMORY": StateFailed, "PREEMPTED": StateFailed} {
		if got := NormalizeState(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func TestParseSacct(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[int]string // task → shard state
	}{
		{"77_0|COMPLETED\n77_1|CANCELLED by 0\n77_2|TIMEOUT\n", map[int]string{0: StateCompleted, 1: StateCancelled, 2: StateFailed}},
		{"77_[3-5%2]|PENDING\n77_2|RUNNING\n", map[int]string{2: StateRunning, 3: StatePending, 4: StatePending, 5: StatePending}},
		{"77_4|OUT_OF_MEMORY\n78_1|COMPLETED\n77|COMPLETED\n", map[int]string{4: StateFailed}},
		{"garbage\n|\n77_1|\n", map[int]string{}},
	} {
		got, err := parseSacct("77", []byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %d tasks %+v, want %d", tc.in, len(got), got, len(tc.want))
		}
		for task, state := range tc.want {
			if got[task].State != state {
				t.Errorf("%q: task %d %+v, want %s", tc.in, task, got[task], state)
			}
		}
	}
	if got, _ := parseSacct("77", []byte("77_1|CANCELLED by 0\n")); got[1].SlurmState != "CANCELLED" {
		t.Errorf("slurm state %q, want CANCELLED", got[1].SlurmState)
	}
}

func FuzzParseSacct(f *testing.F) {
	f.Add("77_0|COMPLETED\n77_[3-5%2]|PENDING\n77_1|CANCELLED by 0\n")
	f.Fuzz(func(t *testing.T, s string) {
		tasks, err := parseSacct("77", []byte(s))
		if err == nil {
			for k, v := range tasks {
				if k < 0 || v.Task != k || v.State == "" || strings.ContainsAny(v.SlurmState, " |") {
					t.Fatalf("bad task %d: %+v", k, v)
				}
			}
		}
	})
}
