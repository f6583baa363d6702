package runner

import (
	"bytes"
	"context"
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

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
)

// runWithin runs RunShard and fails the test, rather than hanging it, when the run
// does not end within limit (a runner that waits forever on a model is the bug).
func runWithin(t *testing.T, limit time.Duration, dir string, o Options) (Stats, error) {
	t.Helper()
	type res struct {
		st  Stats
		err error
	}
	done := make(chan res, 1)
	go func() {
		st, err := RunShard(context.Background(), dir, nil, 0, o)
		done <- res{st, err}
	}()
	select {
	case r := <-done:
		return r.st, r.err
	case <-time.After(limit):
		t.Fatalf("the run did not end within %s", limit)
		return Stats{}, nil
	}
}

// checkPythonReads checks that Python's json module reads every line of a results
// file as strict UTF-8 JSON, with no NaN or Infinity.
func checkPythonReads(t *testing.T, file string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	script := `import json, sys
def bad(c): raise ValueError("non-finite number " + c)
with open(sys.argv[1], encoding="utf-8", errors="strict") as f:
    for n, line in enumerate(f, 1):
        json.loads(line, parse_constant=bad)
`
	if out, err := exec.Command("python3", "-c", script, file).CombinedOutput(); err != nil {
		t.Errorf("python's json cannot read %s: %v\n%s", file, err, out)
	}
}

// TestRunShardUnusableAnswers: an answer that names a known id but cannot be used
// fails that input at once (attempt 1, stage predict, with the reason), not after the
// item timeout; NaN/Infinity are stored as null and bytes that are not UTF-8 as
// U+FFFD; every other input is answered, and Python reads the results file.
func TestRunShardUnusableAnswers(t *testing.T) {
	model := testModel(t)
	tests := []struct {
		name   string
		raw    string
		ok     bool
		want   string // in the error (failed) or the stored result (ok)
		maxOut int    // MaxAnswerBytes, when set
	}{
		{name: "NaN as json.dumps writes it", raw: `{"id":"{id}","ok":true,"result":{"score":NaN,"v":[Infinity,-Infinity]}}`, ok: true, want: `{"score":null,"v":[null,null]}`},
		{name: "not UTF-8", raw: "{\"id\":\"{id}\",\"ok\":true,\"result\":{\"label\":\"caf\xe9\xff\"}}", ok: true, want: "{\"label\":\"caf\uFFFD\"}"},
		{name: "invalid JSON after the id", raw: `{"id":"{id}","ok":true,"result":{"a":}`, want: "not valid protocol JSON"},
		{name: "ok of the wrong type", raw: `{"id":{id},"ok":"yes","result":1}`, want: "cannot unmarshal string"},
		{name: "torn batch", raw: `{"batch":[{"id":"{id}","ok":true,"result":[1,`, want: "not valid protocol JSON"},
		{name: "line over the cap", raw: `{"id":"{id}","ok":true,"result":"` + strings.Repeat("x", 100<<10) + `"}`, want: "longer than the cap of 65536 bytes", maxOut: 64 << 10},
		{name: "id after a line over the cap", raw: `{"result":"` + strings.Repeat("y", 100<<10) + `","ok":true,"id":"{id}"}`, want: "longer than the cap", maxOut: 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			paths := inputNames(30)
			bad := path.Base(paths[13])
			dir := makeJob(t, paths, model, "-raw-on", bad, "-raw", "q:"+strconv.Quote(tt.raw), "-max-batch", "4")
			o := testOptions(2)
			o.Override.ItemTimeout = set(time.Hour)
			o.MaxAnswerBytes = tt.maxOut
			st, err := runWithin(t, time.Minute, dir, o)
			if err != nil {
				t.Fatal(err)
			}
			for p, r := range exactlyOnce(t, readResults(t, dir, 0), paths) {
				if path.Base(p) != bad {
					if !r.OK {
						t.Errorf("%s failed: %+v", p, r)
					}
					continue
				}
				switch {
				case tt.ok && (!r.OK || !bytes.Equal(r.Result, []byte(tt.want))):
					t.Errorf("%s: %+v (result %s), want ok with %s", p, r, r.Result, tt.want)
				case !tt.ok && (r.OK || r.Stage != results.StagePredict || r.Attempts != 1 || !strings.Contains(r.Error, tt.want)):
					t.Errorf("%s: %+v, want failed at once (stage predict, attempt 1) with %q", p, r, tt.want)
				}
			}
			if st.Restarts != 0 {
				t.Errorf("%d restarts: an unusable answer must not cost the process", st.Restarts)
			}
			checkPythonReads(t, job.ResultFile(dir, 0))
		})
	}
}

// TestRunShardModelClosesStdout: a model that closes its stdout but keeps running
// (and ignores SIGTERM) is killed, its in-flight input retried, and the run ends
// with every input answered once.
func TestRunShardModelClosesStdout(t *testing.T) {
	model := testModel(t)
	paths := inputNames(5)
	dir := makeJob(t, paths, model, "-close-stdout-after", "4")
	st, err := runWithin(t, time.Minute, dir, testOptions(1))
	if err != nil {
		t.Fatal(err)
	}
	for p, r := range exactlyOnce(t, readResults(t, dir, 0), paths) {
		if !r.OK {
			t.Errorf("%s: %+v", p, r)
		}
	}
	if st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
	b, _ := os.ReadFile(filepath.Join(job.LogsDir(dir), "worker-000000-0.log"))
	if !bytes.Contains(b, []byte("closed its stdout but kept running")) {
		t.Errorf("the worker log does not say why the process ended:\n%s", b)
	}
}

// sigtermHelper is the runner in a child process that stops on SIGTERM or SIGINT,
// as run-shard does.
func sigtermHelper(dir string) {
	ctx, stop := signalContext()
	defer stop()
	o := testOptions(2)
	o.Grace = time.Second
	_, err := RunShard(ctx, dir, nil, 0, o)
	if errors.Is(err, context.Canceled) {
		os.Exit(7)
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// TestSIGTERMEndsRun: SIGTERM to a runner process ends it within Grace + 2×killWait
// whatever the model does: here models that closed stdout, live on and ignore
// SIGTERM, and models that never answer. Only the interrupted inputs stay pending.
func TestSIGTERMEndsRun(t *testing.T) {
	model := testModel(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"closes stdout and lives on", []string{"-close-stdout-after", "1"}},
		{"hangs on an input", []string{"-hang-on", "img000003.png", "-ignore-term", "-max-batch", "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths := inputNames(200)
			dir := makeJob(t, paths, append([]string{model}, tc.args...)...)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "RUNNER_SIGTERM_JOB="+dir, "TMPDIR="+t.TempDir())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(readResults(t, dir, 0)) == 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond) // the model is now stuck
			sent := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			limit := time.Second + 2*killWait + 5*time.Second // Grace + 2×killWait, plus slack for a loaded machine
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 7 {
					t.Errorf("runner ended with %v, want the cancelled exit 7; stderr:\n%s", err, stderr.String())
				}
				t.Logf("ended %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
			case <-time.After(limit):
				cmd.Process.Kill()
				<-done
				t.Fatalf("the runner did not end within %s of SIGTERM", limit)
			}
			if n := len(readResults(t, dir, 0)); n == 0 || n == len(paths) {
				t.Errorf("%d result lines: the run was not interrupted mid-way", n)
			}
		})
	}
}

// TestRunShardCapsWorkersAndCleansUp: --workers far above the pending inputs starts
// one worker per input (one log each), and no scratch directory is left, neither
// after a run nor after a model that cannot load.
func TestRunShardCapsWorkersAndCleansUp(t *testing.T) {
	model := testModel(t)
	for _, tc := range []struct {
		name    string
		args    []string
		loadErr bool
	}{
		{"answers", nil, false},
		{"refuses to load", []string{"-refuse"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths := inputNames(5)
			dir := makeJob(t, paths, append([]string{model}, tc.args...)...)
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			_, err := RunShard(context.Background(), dir, nil, 0, testOptions(100000))
			var le *LoadError
			if tc.loadErr != errors.As(err, &le) {
				t.Fatalf("err = %v", err)
			}
			logs, _ := filepath.Glob(filepath.Join(job.LogsDir(dir), "worker-*"))
			if len(logs) > len(paths) {
				t.Errorf("%d worker logs for %d inputs", len(logs), len(paths))
			}
			if !tc.loadErr && len(logs) != len(paths) {
				t.Errorf("%d worker logs, want one per input (%d)", len(logs), len(paths))
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("left in TMPDIR: %v", left)
			}
		})
	}
}

// TestRunShardRotatesWorkerLog: a model that floods its stderr costs at most twice
// the log cap on disk per worker, and the last lines are kept.
func TestRunShardRotatesWorkerLog(t *testing.T) {
	model := testModel(t)
	paths := inputNames(40)
	dir := makeJob(t, paths, model, "-stderr-bytes", "100000")
	o := testOptions(1)
	o.MaxLogBytes = 256 << 10
	if _, err := RunShard(context.Background(), dir, nil, 0, o); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(job.LogsDir(dir), "worker-000000-0.log")
	var total int64
	for _, f := range []string{logf, logf + ".1"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > o.MaxLogBytes {
			t.Errorf("%s: %d bytes, over the cap of %d", f, fi.Size(), o.MaxLogBytes)
		}
		total += fi.Size()
	}
	if total < o.MaxLogBytes {
		t.Errorf("%d bytes kept in all: less than one full log", total)
	}
	b, _ := os.ReadFile(logf)
	if last := "testmodel: answered /data/" + paths[len(paths)-1]; !bytes.Contains(b, []byte(last)) {
		t.Errorf("the log lost its last lines (%q)", last)
	}
}

// TestRunShardLogsWhileLoading: a model that never handshakes is logged about while
// the runner waits, then stopped by the load timeout.
func TestRunShardLogsWhileLoading(t *testing.T) {
	model := testModel(t)
	dir := makeJob(t, inputNames(3), model, "-silent")
	var logs syncBuffer
	o := testOptions(1)
	o.Log = zerolog.New(&logs)
	o.Override.LoadTimeout = set(1500 * time.Millisecond)
	o.LoadLogEvery = 400 * time.Millisecond
	_, err := runWithin(t, time.Minute, dir, o)
	var le *LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), "load timeout (1.5s)") {
		t.Fatalf("err = %v, want a load error naming the load timeout", err)
	}
	if n := strings.Count(logs.String(), "waiting for the model to load ("); n < 2 {
		t.Errorf("%d waiting lines in the log:\n%s", n, logs.String())
	}
}
