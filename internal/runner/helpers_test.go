package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

func TestMain(m *testing.M) {
	container.MaybeRunChild()
	if os.Getenv("RUNNER_HELPER_JOB") != "" {
		runHelper()
		return
	}
	if dir := os.Getenv("RUNNER_SIGTERM_JOB"); dir != "" {
		sigtermHelper(dir)
		return
	}
	os.Exit(m.Run())
}

// hostRuntime runs the model directly on the host (no container): the runner's own
// logic is what these tests check; the container runtimes are tested in package
// runtime, and end to end with the builtin runtime below and in cmd/scv-hpc.
type hostRuntime struct{}

func (hostRuntime) Name() string                          { return "host" }
func (hostRuntime) Prepare(context.Context, string) error { return nil }
func (hostRuntime) Command(ctx context.Context, s container.Spec) (*exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, s.Command[0], s.Command[1:]...)
	cmd.Dir = s.Scratch
	cmd.Env = os.Environ()
	for k, v := range s.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if s.GPU != "" {
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+s.GPU)
	}
	if s.Output != "" {
		// No /out bind on the host: the test model writes here in its stead.
		cmd.Env = append(cmd.Env, "SCV_TEST_OUT_MOUNT="+s.Output)
	}
	return cmd, nil
}

func testModel(t testing.TB) string {
	return testenv.BuildProgram(t, "./internal/runner/testdata/testmodel")
}

// inputNames returns n relative paths spread over directories.
func inputNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("d%02d/img%06d.png", i%7, i)
	}
	return names
}

// makeJob writes a job directory with one shard holding paths.
func makeJob(t testing.TB, paths []string, predict ...string) string {
	t.Helper()
	dir := t.TempDir()
	data := t.TempDir()
	j := &job.Job{Model: "testmodel", SIF: filepath.Join(data, "model.sif"), Predict: predict, DataRoot: data,
		Shards: 1, Inputs: int64(len(paths)), Run: job.DefaultRunOptions()}
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	writeShard(t, dir, 0, paths)
	return dir
}

func writeShard(t testing.TB, dir string, i int, paths []string) {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(job.ShardFile(dir, i), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readResults returns every line of shard i's result file, in order.
func readResults(t testing.TB, dir string, i int) []results.Record {
	t.Helper()
	var recs []results.Record
	if err := results.Read(job.ResultFile(dir, i), func(r results.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return recs
}

// exactlyOnce checks that every path has exactly one result line and returns them by path.
func exactlyOnce(t testing.TB, recs []results.Record, paths []string) map[string]results.Record {
	t.Helper()
	by := map[string]results.Record{}
	for _, r := range recs {
		if _, dup := by[r.Path]; dup {
			t.Errorf("%s has more than one result line", r.Path)
		}
		by[r.Path] = r
	}
	var missing []string
	for _, p := range paths {
		if _, ok := by[p]; !ok {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d inputs have no result, e.g. %q", len(missing), missing[:min(5, len(missing))])
	}
	if len(by) != len(paths) {
		t.Errorf("%d distinct result paths for %d inputs", len(by), len(paths))
	}
	return by
}

func testOptions(workers int) Options {
	return Options{Override: job.Override{Workers: &workers}, Runtime: hostRuntime{}, Log: zerolog.Nop()}
}

// set returns a pointer to v, for job.Override.
func set[T any](v T) *T {
	return &v
}

// signalContext is cancelled by SIGTERM or SIGINT, as the CLI's context is.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
