package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cli"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// statusRun runs scv-hpc in-process and returns its exit code and output.
func runInProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(""), &out, &errb)
	root := newRootCmd(a)
	root.SetArgs(append([]string{"--log-format", "json"}, args...))
	err := root.ExecuteContext(context.Background())
	return exitCode(a, err), out.String(), errb.String()
}

// statusJob makes a job of 3 shards of 4 inputs: shard 0 all ok, shard 1 with one
// failure and one pending input, shard 2 without results. With complete, every
// input of every shard gets an ok result.
func statusJob(t *testing.T, complete bool) (dir string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	for i := 0; i < 12; i++ {
		p := filepath.Join(data, fmt.Sprintf("img%02d.png", i))
		os.MkdirAll(data, 0o755)
		os.WriteFile(p, []byte("png"), 0o644)
	}
	dir = filepath.Join(t.TempDir(), "run1")
	sum, err := sharding.WriteShards(context.Background(), dir, data, sharding.ScanOptions{}, sharding.Plan{ShardSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Save(dir, &job.Job{Model: "faces", DataRoot: data, Shards: sum.Shards, Inputs: sum.Inputs, Skipped: 2}); err != nil {
		t.Fatal(err)
	}
	for s := 0; s < sum.Shards; s++ {
		if s == 2 && !complete {
			continue
		}
		w, err := results.OpenWriter(job.ResultFile(dir, s))
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		sharding.ReadShard(dir, s, func(rel string) error {
			defer func() { i++ }()
			switch {
			case !complete && s == 1 && i == 1:
				return w.Write(results.Record{Path: rel, Error: "cannot decode image", Stage: results.StagePredict})
			case !complete && s == 1 && i == 3:
				return nil // pending
			}
			return w.Write(results.Record{Path: rel, OK: true, Result: json.RawMessage(`{"faces":2}`), MS: 3})
		})
		w.Close()
	}
	return dir
}

func TestStatusCommand(t *testing.T) {
	dir := statusJob(t, false)
	code, out, errOut := runInProcess(t, "status", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "3 shards: 1 done, 1 partial, 1 pending; 6/12 inputs ok, 1 failed, 5 pending"
	if !strings.Contains(out, want+"\n") {
		t.Errorf("summary line missing; output:\n%s", out)
	}
	for _, row := range []string{"000000  done  4  4  0  0", "000001  partial  4  2  1  1", "000002  pending  4  0  0  4"} {
		if !strings.Contains(strings.Join(strings.Fields(out), "  "), row) {
			t.Errorf("row %q missing; output:\n%s", row, out)
		}
	}

	if !strings.Contains(out, "left out 2 file(s)") {
		t.Errorf("files skipped by the scan not mentioned:\n%s", out)
	}

	code, out, _ = runInProcess(t, "status", dir, "--json")
	var js slurm.JobStatus
	if err := json.Unmarshal([]byte(out), &js); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if js.Totals != (results.Totals{Inputs: 12, OK: 6, Failed: 1, Pending: 5}) || len(js.Shards) != 3 || js.Summary != want || js.Model != "faces" || js.ScanSkipped != 2 {
		t.Errorf("--json: %+v", js)
	}

	for _, args := range [][]string{{"status"}, {"status", dir, dir}} {
		if code, _, _ := runInProcess(t, args...); code != cli.ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, cli.ExitUsage)
		}
	}
	if code, _, errOut := runInProcess(t, "status", t.TempDir()); code != cli.ExitError || !strings.Contains(errOut, "not a job directory") {
		t.Errorf("not a job: exit %d, %s", code, errOut)
	}
}

func TestCollectCommand(t *testing.T) {
	partial := statusJob(t, false)
	complete := statusJob(t, true)
	outDir := t.TempDir()
	tests := []struct {
		name     string
		args     []string
		code     int
		file     string // output file to check, "" for stdout
		csv      bool
		lines    int
		errorHas string
	}{
		{"jsonl with failures", []string{"collect", partial, "-o", filepath.Join(outDir, "a.jsonl")}, cli.ExitInputsFailed, "a.jsonl", false, 12, "6 ok, 1 failed, 5 pending"},
		{"scan skips mentioned", []string{"collect", partial, "-o", filepath.Join(outDir, "a2.jsonl")}, cli.ExitInputsFailed, "a2.jsonl", false, 12, "left out 2 file(s)"},
		{"csv by extension", []string{"collect", partial, "-o", filepath.Join(outDir, "a.CSV")}, cli.ExitInputsFailed, "a.CSV", true, 13, "resubmit"},
		{"all ok", []string{"collect", complete, "-o", filepath.Join(outDir, "b.jsonl")}, cli.ExitOK, "b.jsonl", false, 12, "12 ok, 0 failed, 0 pending"},
		{"stdout", []string{"collect", complete, "-o", "-"}, cli.ExitOK, "", false, 12, "into stdout"},
		{"forced csv to stdout", []string{"collect", complete, "-o", "-", "--format", "csv"}, cli.ExitOK, "", true, 13, ""},
		{"forced format beats extension", []string{"collect", complete, "-o", filepath.Join(outDir, "c.txt"), "--format", "jsonl"}, cli.ExitOK, "c.txt", false, 12, ""},
		{"unknown extension", []string{"collect", complete, "-o", filepath.Join(outDir, "d.txt")}, cli.ExitUsage, "", false, 0, "scv-hpc: unknown output format: cannot tell it from the extension"},
		{"unknown format", []string{"collect", complete, "-o", "-", "--format", "xml"}, cli.ExitUsage, "", false, 0, `scv-hpc: unknown output format "xml"`},
		{"no -o", []string{"collect", complete}, cli.ExitUsage, "", false, 0, "-o FILE is required"},
		{"not a job", []string{"collect", outDir, "-o", filepath.Join(outDir, "e.jsonl")}, cli.ExitError, "", false, 0, "scv-hpc: " + outDir + ": not a job directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runInProcess(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.errorHas) {
				t.Fatalf("exit %d (want %d), stderr %q (want it to contain %q)", code, tc.code, stderr, tc.errorHas)
			}
			if tc.lines == 0 {
				if tc.code != cli.ExitOK && tc.code != cli.ExitInputsFailed {
					if out := outputArg(tc.args); out != "-" && out != "" {
						if _, err := os.Stat(out); err == nil {
							t.Errorf("output %s written on error", out)
						}
					}
				}
				return
			}
			content := stdout
			if tc.file != "" {
				b, err := os.ReadFile(filepath.Join(outDir, tc.file))
				if err != nil {
					t.Fatal(err)
				}
				content = string(b)
			}
			if tc.csv {
				rows, err := csv.NewReader(strings.NewReader(content)).ReadAll()
				if err != nil || len(rows) != tc.lines || rows[0][0] != "path" {
					t.Fatalf("csv: %d rows, %v", len(rows), err)
				}
				return
			}
			lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
			if len(lines) != tc.lines {
				t.Fatalf("%d lines, want %d", len(lines), tc.lines)
			}
			for _, l := range lines {
				var r results.Record
				if err := json.Unmarshal([]byte(l), &r); err != nil || r.Path == "" {
					t.Fatalf("line %q: %v", l, err)
				}
			}
		})
	}
}

// outputArg is the value of -o in args, "" without one.
func outputArg(args []string) string {
	for i, a := range args {
		if a == "-o" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// TestStatusSlurmColumns: for a job submitted to Slurm, the table gets the SLURM
// and TASK columns from squeue, "-" for a shard no array ran.
func TestStatusSlurmColumns(t *testing.T) {
	dir := statusJob(t, false)
	j, err := job.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.Slurm = &job.Slurm{Arrays: []job.Array{{JobID: "77", Shards: []int{0, 1}}}}
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	testenv.ScriptPATH(t, map[string]string{"squeue": `case "$*" in *" 77 "*) ;; *) echo "unexpected squeue $*" >&2; exit 1;; esac
echo "77_0 RUNNING None"
echo "77_1 PENDING JobArrayTaskLimit"
`})
	code, out, errOut := runInProcess(t, "status", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows [][]string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "SHARD") || strings.HasPrefix(strings.TrimSpace(l), "00000") {
			rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(l), -1))
		}
	}
	want := [][]string{
		{"SHARD", "STATE", "INPUTS", "OK", "FAILED", "PENDING", "SLURM", "TASK"},
		{"000000", "done", "4", "4", "0", "0", "running", "77_0"},
		{"000001", "partial", "4", "2", "1", "1", "pending (JobArrayTaskLimit)", "77_1"},
		{"000002", "pending", "4", "0", "0", "4", "-", "-"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("table columns:\n got %q\nwant %q\noutput:\n%s", rows, want, out)
	}
	if strings.Contains(out, "None") || strings.Contains(out, "could not be asked") {
		t.Errorf("output:\n%s", out)
	}
}
