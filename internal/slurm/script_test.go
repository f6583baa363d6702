package slurm

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeScvHPC is a stand-in for scv-hpc: it writes its argv, NUL-separated, to
// $ARGV_FILE. With SLOW=1 it waits for SIGTERM, then "flushes" and exits 0.
const fakeScvHPC = `#!/bin/bash
printf '%s\0' "$@" > "$ARGV_FILE"
if [ "${SLOW:-}" = 1 ]; then
  trap 'echo flushed >> "$ARGV_FILE.flushed"; exit 0' TERM
  echo ready > "$ARGV_FILE.ready"
  while :; do sleep 0.1; done
fi
exit "${EXIT_CODE:-0}"
`

type scriptRun struct {
	root, argvFile string
	cmd            *exec.Cmd
	out            bytes.Buffer
}

// startScript renders p with the fake scv-hpc and a hostile job dir under a
// temporary root, and starts it with bash as Slurm would (task 1 of array 77).
func startScript(t *testing.T, p Params, env ...string) *scriptRun {
	t.Helper()
	r := &scriptRun{root: t.TempDir()}
	binDir := filepath.Join(r.root, "bin "+hostile)
	p.JobDir = filepath.Join(r.root, "$(touch pwned)", hostile)
	for _, d := range []string{binDir, p.JobDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p.Binary = filepath.Join(binDir, "scv-hpc")
	if err := os.WriteFile(p.Binary, []byte(fakeScvHPC), 0o755); err != nil {
		t.Fatal(err)
	}
	var script bytes.Buffer
	if err := Render(&script, p); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.root, "job.sbatch")
	if err := os.WriteFile(path, script.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	r.argvFile = filepath.Join(r.root, "argv")
	r.cmd = exec.Command("bash", path)
	r.cmd.Dir = r.root
	r.cmd.Env = append(os.Environ(), "ARGV_FILE="+r.argvFile, "SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_JOB_ID=77", "SLURM_JOB_GPUS=0", "CUDA_VISIBLE_DEVICES=0")
	r.cmd.Env = append(r.cmd.Env, env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *scriptRun) argv(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(r.argvFile)
	if err != nil {
		t.Fatalf("fake scv-hpc never ran: %v\nscript output:\n%s", err, r.out.String())
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// noPwned fails if any command injected through a path ran.
func (r *scriptRun) noPwned(t *testing.T) {
	t.Helper()
	filepath.WalkDir(r.root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "pwned") {
			t.Errorf("injection ran: %s exists", path)
		}
		return nil
	})
	for _, f := range []string{"pwned", "pwned2", "pwned3"} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("injection ran: ./%s exists", f)
		}
	}
}

func TestScriptQuotingRuns(t *testing.T) {
	cases := []struct {
		name     string
		edit     func(p *Params)
		exitCode string
		wantArgs func(p Params, jobDir string) []string
	}{
		{"offset", func(p *Params) { p.Offset = 40 }, "0", func(p Params, jobDir string) []string {
			return append(append([]string{}, p.GlobalArgs...), "run-shard", jobDir, "--index", "1", "--offset", "40")
		}},
		{"listed with retry", func(p *Params) { p.ShardList = []int{5, 9, 12}; p.RunArgs = []string{"--retry-failed", hostile} }, "3", func(p Params, jobDir string) []string {
			return append(append(append([]string{}, p.GlobalArgs...), "run-shard", jobDir, "--index", "9", "--offset", "0"), p.RunArgs...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := baseParams()
			p.GlobalArgs = []string{"--offline", "--cache", "/shared/" + hostile}
			tc.edit(&p)
			r := startScript(t, p, "EXIT_CODE="+tc.exitCode)
			err := r.cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if err != nil && code == 0 {
				t.Fatalf("script: %v\n%s", err, r.out.String())
			}
			if got := strconv.Itoa(code); got != tc.exitCode {
				t.Errorf("script exit %s (%v), want %s\n%s", got, err, tc.exitCode, r.out.String())
			}
			r.noPwned(t)
			jobDir := filepath.Join(r.root, "$(touch pwned)", hostile)
			if got, want := r.argv(t), tc.wantArgs(p, jobDir); !reflect.DeepEqual(got, want) {
				t.Errorf("argv:\n got %q\nwant %q", got, want)
			}
			for _, s := range []string{"start node=", "gpus=0", "cuda_visible_devices=0", "exit status=" + tc.exitCode, "77_1"} {
				if !strings.Contains(r.out.String(), s) {
					t.Errorf("log lacks %q:\n%s", s, r.out.String())
				}
			}
		})
	}
}

// TestScriptForwardsTERM checks the preemption path: SIGTERM to the batch shell
// reaches run-shard, which flushes and exits 0, and the script reports that.
func TestScriptForwardsTERM(t *testing.T) {
	r := startScript(t, baseParams(), "SLOW=1")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(r.argvFile + ".ready"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fake run-shard did not start:\n%s", r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil {
		t.Errorf("script: %v\n%s", err, r.out.String())
	}
	if b, err := os.ReadFile(r.argvFile + ".flushed"); err != nil || !strings.Contains(string(b), "flushed") {
		t.Errorf("run-shard did not get TERM: %v\n%s", err, r.out.String())
	}
	for _, s := range []string{"received SIGTERM", "exit status=0"} {
		if !strings.Contains(r.out.String(), s) {
			t.Errorf("log lacks %q:\n%s", s, r.out.String())
		}
	}
}
