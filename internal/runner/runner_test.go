package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

func TestRunShardAnswersEveryInput(t *testing.T) {
	model := testModel(t)
	tests := []struct {
		name     string
		n        int
		workers  int
		gpus     []string
		maxBatch int
	}{
		{"one worker", 50, 1, nil, 1},
		{"two workers", 500, 2, nil, 1},
		{"batched", 333, 2, nil, 16},
		{"gpu pinned", 200, 0, []string{"0", "1", "2"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths := inputNames(tt.n)
			paths = append(paths, `odd "name"\with,comma:colon.png`)
			dir := makeJob(t, paths, model, "-max-batch", fmt.Sprint(tt.maxBatch))
			o := testOptions(tt.workers)
			o.GPUs = tt.gpus
			st, err := RunShard(context.Background(), dir, nil, 0, o)
			if err != nil {
				t.Fatal(err)
			}
			if st.OK != int64(len(paths)) || st.Failed != 0 || st.Inputs != int64(len(paths)) {
				t.Errorf("stats %+v, want %d ok", st, len(paths))
			}
			by := exactlyOnce(t, readResults(t, dir, 0), paths)
			workersSeen := map[string]bool{}
			for p, r := range by {
				var res struct {
					Path, Worker string
					GPU          *string
				}
				if err := json.Unmarshal(r.Result, &res); err != nil || !r.OK {
					t.Fatalf("%s: bad result %+v: %v", p, r, err)
				}
				if res.Path != "/data/"+p {
					t.Errorf("model saw path %q for input %q", res.Path, p)
				}
				workersSeen[res.Worker] = true
				// Worker i is pinned to GPUs[i]; unpinned, the model inherits the environment.
				want, set := os.LookupEnv("CUDA_VISIBLE_DEVICES")
				if len(tt.gpus) > 0 {
					i, err := strconv.Atoi(res.Worker)
					if err != nil || i < 0 || i >= len(tt.gpus) {
						t.Fatalf("%s: answered by worker %q, want one of %d", p, res.Worker, len(tt.gpus))
					}
					want, set = tt.gpus[i], true
				}
				if (res.GPU != nil) != set || (set && *res.GPU != want) {
					t.Errorf("%s: worker %s saw CUDA_VISIBLE_DEVICES %v, want %q (set %v)", p, res.Worker, derefOr(res.GPU, "<unset>"), want, set)
				}
			}
			want := max(tt.workers, len(tt.gpus))
			if len(workersSeen) != want && tt.n >= 200 {
				t.Errorf("answers came from workers %v, want %d workers", workersSeen, want)
			}
			// Each worker logs its model's stderr.
			for i := range want {
				b, err := os.ReadFile(fmt.Sprintf("%s/worker-%06d-%d.log", job.LogsDir(dir), 0, i))
				if err != nil || !strings.Contains(string(b), "testmodel: loading weights") {
					t.Errorf("worker %d log: %v %q", i, err, b)
				}
			}
		})
	}
}

func TestRunShardLoadFailures(t *testing.T) {
	model := testModel(t)
	tests := []struct {
		name  string
		args  []string
		wants []string
	}{
		{"refuses handshake", []string{"-refuse"}, []string{"stage load", "not ready: cannot import torch", "libcudnn.so.8"}},
		{"never handshakes", []string{"-silent"}, []string{"stage load", "no handshake within", "stuck while loading"}},
		{"no such program", nil, []string{"stage start", "does-not-exist"}},
		// A handshake written wrong fails at once, not at the load timeout.
		{"Python dict as handshake", []string{"-handshake-line", "{'scv': 1, 'ready': True}"}, []string{"stage load", "the handshake line is not valid", "{'scv': 1", "json.dumps"}},
		{"version as a string", []string{"-handshake-line", `{"scv":"1","ready":true}`}, []string{"stage load", "the handshake line is not valid", "cannot unmarshal string"}},
		{"ready as a string", []string{"-handshake-line", `{"scv":1,"ready":"yes"}`}, []string{"stage load", "the handshake line is not valid", "ready of type bool"}},
		{"a version of 100 kB", []string{"-handshake-line", `{"scv":` + strings.Repeat("9", 100<<10) + `}`}, []string{"stage load", "the handshake line is not valid", "cannot unmarshal number 999"}},
		{"not ready, with an error of 100 kB", []string{"-handshake-line", `{"scv":1,"ready":false,"error":"` + strings.Repeat("x", 100<<10) + `"}`}, []string{"stage load", "not ready: xxx"}},
		{"closes stdout before its handshake", []string{"-close-stdout-after", "-1"}, []string{"stage load", "ended before its handshake", "closed its stdout but kept running", "living on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv := append([]string{model}, tt.args...)
			if tt.args == nil {
				argv = []string{"/does-not-exist/model"}
			}
			paths := inputNames(100)
			dir := makeJob(t, paths, argv...)
			o := testOptions(2)
			o.Override.LoadTimeout = set(500 * time.Millisecond)
			start := time.Now()
			_, err := RunShard(context.Background(), dir, nil, 0, o)
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a load error", err)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%.2000v", w, err)
				}
			}
			if n := len(err.Error()); n > 16<<10 {
				t.Errorf("the error is %d bytes: a hostile line must not make it unbounded", n)
			}
			if recs := readResults(t, dir, 0); len(recs) != 0 {
				t.Errorf("a load failure recorded %d inputs as failed; the run must stop instead", len(recs))
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}

// TestRunShardChatterBeforeHandshake: a line before the handshake that mentions scv
// without being an attempt at the handshake (a JSON log line of a logger named scv, a
// printed config, Python's print(dict) of a value) is chatter: the model loads.
func TestRunShardChatterBeforeHandshake(t *testing.T) {
	model := testModel(t)
	for _, chatter := range []string{
		`{"level":"info","logger":"scv","msg":"loading weights"}`,
		`{"name": "scv", "model": {"arch": "resnet50"}}`,
		`{'framework': 'torch', 'wrapper': 'scv'}`,
	} {
		t.Run(chatter, func(t *testing.T) {
			paths := inputNames(10)
			dir := makeJob(t, paths, model, "-chatter", chatter)
			o := testOptions(1)
			o.Override.LoadTimeout = set(30 * time.Second)
			st, err := RunShard(context.Background(), dir, nil, 0, o)
			if err != nil || st.OK != int64(len(paths)) {
				t.Fatalf("RunShard: %+v, %v; want %d ok", st, err, len(paths))
			}
		})
	}
}

func TestRunShardModelThatCannotPredict(t *testing.T) {
	model := testModel(t)
	paths := inputNames(1000)
	dir := makeJob(t, paths, model, "-crash-on", "ALL", "-max-batch", "4")
	o := testOptions(2)
	_, err := RunShard(context.Background(), dir, nil, 0, o)
	var le *LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "cannot predict at all") || !strings.Contains(err.Error(), "segmentation fault") {
		t.Fatalf("err = %v, want a load error naming the crash", err)
	}
	recs := readResults(t, dir, 0)
	if len(recs) > 2*brokenLimit {
		t.Errorf("%d inputs recorded failed before stopping; want at most %d", len(recs), 2*brokenLimit)
	}
	for _, r := range recs {
		if r.OK || r.Stage != results.StageCrash {
			t.Errorf("%+v", r)
		}
	}
}

func TestRunShardPerInputFailures(t *testing.T) {
	model := testModel(t)
	tests := []struct {
		name      string
		args      []string
		bad       string // base name of the failing input
		stage     string
		errSubstr string
		restarts  bool
	}{
		{"model error", []string{"-fail-on", "img000042.png"}, "img000042.png", results.StagePredict, "cannot decode image", false},
		{"crash on input", []string{"-crash-on", "img000042.png", "-max-batch", "4"}, "img000042.png", results.StageCrash, "segmentation fault", true},
		{"hang on input", []string{"-hang-on", "img000042.png", "-max-batch", "4"}, "img000042.png", results.StageTimeout, "item timeout", true},
		{"exits after 7", []string{"-exit-after", "7"}, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths := inputNames(120)
			dir := makeJob(t, paths, append([]string{model}, tt.args...)...)
			o := testOptions(2)
			o.Override.ItemTimeout = set(300 * time.Millisecond)
			st, err := RunShard(context.Background(), dir, nil, 0, o)
			if err != nil {
				t.Fatal(err)
			}
			by := exactlyOnce(t, readResults(t, dir, 0), paths)
			for p, r := range by {
				if path.Base(p) == tt.bad {
					if r.OK || r.Stage != tt.stage || !strings.Contains(r.Error, tt.errSubstr) {
						t.Errorf("%s: got %+v, want stage %s with %q", p, r, tt.stage, tt.errSubstr)
					}
					if tt.stage != results.StagePredict && r.Attempts != job.DefaultRetries+1 {
						t.Errorf("%s tried %d times, want %d", p, r.Attempts, job.DefaultRetries+1)
					}
				} else if !r.OK {
					t.Errorf("%s failed though only %q is bad: %+v", p, tt.bad, r)
				}
			}
			if tt.restarts != (st.Restarts > 0) {
				t.Errorf("restarts = %d", st.Restarts)
			}
			wantFailed := int64(0)
			if tt.bad != "" {
				wantFailed = 1
			}
			if st.Failed != wantFailed || st.OK != int64(len(paths))-wantFailed {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestRunShardResumes(t *testing.T) {
	model := testModel(t)
	paths := inputNames(300)
	dir := makeJob(t, paths, model)
	// A previous run answered the first 100, and was killed mid-write of the 101st.
	w, err := results.OpenWriter(job.ResultFile(dir, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths[:100] {
		w.Write(results.Record{Path: p, OK: true, Result: json.RawMessage(`{"old":true}`)})
	}
	w.Close()
	f, _ := os.OpenFile(job.ResultFile(dir, 0), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"path":"` + paths[100] + `","ok":tr`)
	f.Close()

	st, err := RunShard(context.Background(), dir, nil, 0, testOptions(2))
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 100 || st.OK != 200 {
		t.Errorf("stats %+v, want 100 skipped and 200 run", st)
	}
	by := exactlyOnce(t, readResults(t, dir, 0), paths)
	if !strings.Contains(string(by[paths[0]].Result), "old") || strings.Contains(string(by[paths[150]].Result), "old") {
		t.Error("resume re-ran done inputs or skipped new ones")
	}
	// A third run has nothing to do.
	st, err = RunShard(context.Background(), dir, nil, 0, testOptions(2))
	if err != nil || st.Skipped != 300 || st.OK != 0 {
		t.Errorf("complete shard: %+v, %v", st, err)
	}
}

func TestRunShardCancelThenResume(t *testing.T) {
	model := testModel(t)
	paths := inputNames(400)
	dir := makeJob(t, paths, model, "-delay", "5ms", "-max-batch", "4")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	o := testOptions(2)
	o.Grace = 2 * time.Second
	st, err := RunShard(ctx, dir, nil, 0, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	first := readResults(t, dir, 0)
	if len(first) == 0 || len(first) == len(paths) || int64(len(first)) != st.OK {
		t.Fatalf("cancelled run wrote %d lines (stats %+v)", len(first), st)
	}
	for _, r := range first {
		if !r.OK {
			t.Errorf("cancellation recorded a failure: %+v", r)
		}
	}
	if _, err := RunShard(context.Background(), dir, nil, 0, testOptions(2)); err != nil {
		t.Fatal(err)
	}
	exactlyOnce(t, readResults(t, dir, 0), paths)
}

// runHelper is the runner in a child process, for the SIGKILL test.
func runHelper() {
	o := testOptions(2)
	if _, err := RunShard(context.Background(), os.Getenv("RUNNER_HELPER_JOB"), nil, 0, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func TestRunShardSIGKILLThenRerun(t *testing.T) {
	model := testModel(t)
	paths := inputNames(3000)
	dir := makeJob(t, paths, model, "-delay", "200us", "-max-batch", "8")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "RUNNER_HELPER_JOB="+dir, "TMPDIR="+t.TempDir()) // scratch a SIGKILL leaves behind
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		before := len(readResults(t, dir, 0))
		deadline := time.Now().Add(20 * time.Second)
		for len(readResults(t, dir, 0)) < before+300 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	if n := len(readResults(t, dir, 0)); n >= len(paths) {
		t.Fatalf("the killed runs finished everything (%d lines): the test did not kill mid-run", n)
	}
	if _, err := RunShard(context.Background(), dir, nil, 0, testOptions(2)); err != nil {
		t.Fatal(err)
	}
	by := exactlyOnce(t, readResults(t, dir, 0), paths)
	for p, r := range by {
		if !r.OK {
			t.Errorf("%s: %+v", p, r)
		}
	}
}

func TestRunShardBadIndex(t *testing.T) {
	dir := makeJob(t, inputNames(3), "x")
	if _, err := RunShard(context.Background(), dir, nil, 1, testOptions(1)); err == nil || !strings.Contains(err.Error(), "has 1 shards") {
		t.Errorf("err = %v", err)
	}
}

func TestRunShardRetryFailed(t *testing.T) {
	model := testModel(t)
	paths := inputNames(50)
	dir := makeJob(t, paths, model, "-fail-on", "img000007.png")
	if _, err := RunShard(context.Background(), dir, nil, 0, testOptions(1)); err != nil {
		t.Fatal(err)
	}
	// The model is fixed; a retry of failed inputs runs only img000007.png.
	j, _ := job.Load(dir)
	j.Predict = []string{model}
	job.Save(dir, j)
	o := testOptions(1)
	o.RetryFailed = true
	st, err := RunShard(context.Background(), dir, nil, 0, o)
	if err != nil || st.OK != 1 || st.Skipped != 49 {
		t.Fatalf("retry: %+v, %v", st, err)
	}
	final, _ := results.Final(job.ResultFile(dir, 0))
	if len(final) != 50 || !final[paths[7]].OK {
		t.Errorf("final results: %d, %+v", len(final), final[paths[7]])
	}
}

// TestRunShardKeepsOutputs: the model learns where large outputs go (SCV_OUTPUT_DIR
// = /out in the container, SCV_OUTPUT_HOST = the job's outputs directory, absolute
// even for a relative job directory), the runner creates that directory (also for a
// job saved before it existed), and what the model writes there outlives the shard,
// whose scratch directory is removed.
func TestRunShardKeepsOutputs(t *testing.T) {
	model := testModel(t)
	paths := inputNames(20)
	dir := makeJob(t, paths, model, "-write-output", "-max-batch", "4")
	if err := os.RemoveAll(job.OutputsDir(dir)); err != nil { // as a job from an older scv-hpc
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Chdir(filepath.Dir(dir))
	st, err := RunShard(context.Background(), filepath.Base(dir), nil, 0, testOptions(2))
	if err != nil || st.OK != int64(len(paths)) {
		t.Fatalf("RunShard: %+v, %v", st, err)
	}
	outputs := job.OutputsDir(dir)
	for p, r := range exactlyOnce(t, readResults(t, dir, 0), paths) {
		var res struct {
			Output    string `json:"output"`
			OutputDir string `json:"output_dir"`
		}
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatal(err)
		}
		if res.OutputDir != "/out" {
			t.Errorf("%s: the model saw SCV_OUTPUT_DIR=%q, want /out", p, res.OutputDir)
		}
		if want := filepath.Join(outputs, path.Base(p)+".out"); res.Output != want {
			t.Errorf("%s: output recorded as %q, want %q", p, res.Output, want)
		}
		if b, err := os.ReadFile(res.Output); err != nil || string(b) != "/data/"+p {
			t.Errorf("%s: output file after the shard: %q, %v", p, b, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "scv-hpc-scratch-*")); len(left) != 0 {
		t.Errorf("scratch directories left behind: %q", left)
	}
}

func derefOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}
