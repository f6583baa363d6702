package results

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// newJob makes a job of shards*per inputs with real shard files from a scan.
func newJob(t *testing.T, shards, per int) (dir string, paths [][]string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	for i := 0; i < shards*per; i++ {
		p := filepath.Join(data, fmt.Sprintf("d%d", i/per), fmt.Sprintf("img%03d.png", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte("x"), 0o644)
	}
	dir = filepath.Join(t.TempDir(), "run")
	sum, err := sharding.WriteShards(context.Background(), dir, data, sharding.ScanOptions{}, sharding.Plan{ShardSize: per})
	if err != nil {
		t.Fatal(err)
	}
	if err := job.Save(dir, &job.Job{Model: "faces", DataRoot: data, Shards: sum.Shards, Inputs: sum.Inputs}); err != nil {
		t.Fatal(err)
	}
	paths = make([][]string, sum.Shards)
	for i := range paths {
		sharding.ReadShard(dir, i, func(rel string) error { paths[i] = append(paths[i], rel); return nil })
	}
	return dir, paths
}

func writeResults(t *testing.T, dir string, shard int, recs ...Record) {
	t.Helper()
	w, err := OpenWriter(job.ResultFile(dir, shard))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func ok(path string, faces int) Record {
	return Record{Path: path, OK: true, Result: json.RawMessage(fmt.Sprintf(`{"faces":%d}`, faces)), MS: 5}
}

func failed(path, stage string) Record {
	return Record{Path: path, Error: "it broke, \"badly\"", Stage: stage, MS: 7}
}

// fixture: shard 0 done, 1 partial, 2 pending, 3 failed (a retry fixed one of two),
// plus a stray line for a path that is not in the shard.
func fixture(t *testing.T) (string, [][]string) {
	dir, p := newJob(t, 4, 3)
	writeResults(t, dir, 0, ok(p[0][0], 1), ok(p[0][1], 2), ok(p[0][2], 3))
	writeResults(t, dir, 1, ok(p[1][0], 4), failed(p[1][2], StageTimeout))
	writeResults(t, dir, 3, failed(p[3][0], StageCrash), failed(p[3][1], StagePredict), ok(p[3][2], 5),
		ok(p[3][1], 6), Record{Path: "not/in/shard.png", OK: true})
	// A torn tail from a kill is not a result.
	f, _ := os.OpenFile(job.ResultFile(dir, 1), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"path":"` + p[1][1] + `","ok":true`)
	f.Close()
	return dir, p
}

func TestSummarize(t *testing.T) {
	dir, _ := fixture(t)
	s, err := Summarize(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []ShardStatus{
		{Index: 0, Inputs: 3, OK: 3, State: StateDone},
		{Index: 1, Inputs: 3, OK: 1, Failed: 1, Pending: 1, State: StatePartial},
		{Index: 2, Inputs: 3, Pending: 3, State: StatePending},
		{Index: 3, Inputs: 3, OK: 2, Failed: 1, State: StateFailed},
	}
	if !reflect.DeepEqual(s.Shards, want) {
		t.Errorf("shards\n %+v\nwant\n %+v", s.Shards, want)
	}
	if wt := (Totals{Inputs: 12, OK: 6, Failed: 2, Pending: 4}); s.Totals != wt {
		t.Errorf("totals %+v, want %+v", s.Totals, wt)
	}
	if ws := map[string]int{"done": 1, "partial": 1, "pending": 1, "failed": 1}; !reflect.DeepEqual(s.States, ws) {
		t.Errorf("states %v", s.States)
	}
	if s.Job == nil || s.Job.Model != "faces" {
		t.Errorf("job not loaded: %+v", s.Job)
	}
}

func TestSummarizeErrors(t *testing.T) {
	if _, err := Summarize(t.TempDir()); !errors.Is(err, job.ErrNoJob) {
		t.Errorf("no job: %v", err)
	}
	dir, _ := newJob(t, 2, 2)
	os.WriteFile(job.ResultFile(dir, 1), []byte("{\"path\":\"a\",\"ok\":true}\nnot json\n"), 0o644)
	if _, err := Summarize(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "000001.jsonl:2") {
		t.Errorf("corrupt result file: %v", err)
	}
	os.Remove(job.ResultFile(dir, 1))
	os.Remove(job.ShardFile(dir, 1))
	if _, err := Summarize(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing shard: %v", err)
	}
}

func TestCollect(t *testing.T) {
	dir, p := fixture(t)
	var order []string
	for _, s := range p {
		order = append(order, s...)
	}
	wantTotals := Totals{Inputs: 12, OK: 6, Failed: 2, Pending: 4}
	// What each input must end as: ok with its faces, failed with its stage, or pending.
	want := map[string]string{
		p[0][0]: "ok 1", p[0][1]: "ok 2", p[0][2]: "ok 3",
		p[1][0]: "ok 4", p[1][1]: "pending", p[1][2]: "failed timeout",
		p[2][0]: "pending", p[2][1]: "pending", p[2][2]: "pending",
		p[3][0]: "failed crash", p[3][1]: "ok 6", p[3][2]: "ok 5",
	}
	describe := func(okv bool, stage, result string) string {
		switch {
		case okv:
			var r struct{ Faces int }
			json.Unmarshal([]byte(result), &r)
			return fmt.Sprint("ok ", r.Faces)
		case stage == StagePending:
			return "pending"
		}
		return "failed " + stage
	}
	t.Run("jsonl", func(t *testing.T) {
		var buf bytes.Buffer
		tot, err := Collect(context.Background(), dir, &buf, FormatJSONL)
		if err != nil || tot != wantTotals {
			t.Fatalf("totals %+v, %v", tot, err)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got = append(got, r.Path)
			if d := describe(r.OK, r.Stage, string(r.Result)); d != want[r.Path] {
				t.Errorf("%s: %s, want %s", r.Path, d, want[r.Path])
			}
		}
		if !reflect.DeepEqual(got, order) {
			t.Errorf("order %q, want %q", got, order)
		}
	})
	t.Run("csv", func(t *testing.T) {
		var buf bytes.Buffer
		tot, err := Collect(context.Background(), dir, &buf, FormatCSV)
		if err != nil || tot != wantTotals {
			t.Fatalf("totals %+v, %v", tot, err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rows[0], CSVHeader) || len(rows) != len(order)+1 {
			t.Fatalf("header %q, %d rows", rows[0], len(rows))
		}
		for i, row := range rows[1:] {
			if row[0] != order[i] {
				t.Errorf("row %d is %s, want %s", i, row[0], order[i])
			}
			if d := describe(row[1] == "true", row[2], row[5]); d != want[row[0]] {
				t.Errorf("%s: %s, want %s", row[0], d, want[row[0]])
			}
			if strings.HasPrefix(want[row[0]], "failed") && row[3] != `it broke, "badly"` {
				t.Errorf("%s: error column %q", row[0], row[3])
			}
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := Collect(context.Background(), dir, &bytes.Buffer{}, "xml"); err == nil {
			t.Error("unknown format accepted")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Collect(ctx, dir, &bytes.Buffer{}, FormatJSONL); !errors.Is(err, context.Canceled) {
			t.Errorf("canceled: %v", err)
		}
	})
}

// TestDuplicateShardLine: an input listed twice in a shard file is counted and
// collected once.
func TestDuplicateShardLine(t *testing.T) {
	dir, p := newJob(t, 1, 3)
	s := p[0]
	if err := os.WriteFile(job.ShardFile(dir, 0), []byte(strings.Join([]string{s[0], s[1], s[0], s[2], s[1]}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeResults(t, dir, 0, ok(s[0], 1), failed(s[1], StageCrash))
	want := Totals{Inputs: 3, OK: 1, Failed: 1, Pending: 1}
	sum, err := Summarize(dir)
	if err != nil || sum.Totals != want {
		t.Errorf("summarize: %+v, %v; want %+v", sum.Totals, err, want)
	}
	var buf bytes.Buffer
	tot, err := Collect(context.Background(), dir, &buf, FormatJSONL)
	if err != nil || tot != want {
		t.Errorf("collect: %+v, %v; want %+v", tot, err, want)
	}
	if n := strings.Count(buf.String(), "\n"); n != 3 {
		t.Errorf("collect wrote %d lines, want 3:\n%s", n, buf.String())
	}
}
