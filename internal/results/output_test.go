package results

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// TestCollectTo: the merged results go to the file or stdout named, in the format
// given or told by the name; a name that is one of the job's own files, or that tells
// no format, is refused before anything is written, and the job is left as it was.
func TestCollectTo(t *testing.T) {
	dir := rawJob(t, []string{"a.png\nb.png\n"}, []string{okLine("a.png", 1) + "\n"})
	j, err := job.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	j.Skipped = 2
	if err := job.Save(dir, j); err != nil {
		t.Fatal(err)
	}
	jobJSON, err := os.ReadFile(filepath.Join(dir, "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	for _, tc := range []struct {
		name, out, format string
		err               error
		where             string // "" for the file out
		first             string // the output's first line starts so
	}{
		{"jsonl file", filepath.Join(other, "r.jsonl"), "", nil, "", `{"path":"a.png","ok":true`},
		{"csv by extension", filepath.Join(other, "r.CSV"), "", nil, "", `path,ok,stage`},
		{"format beats extension", filepath.Join(other, "r.txt"), "csv", nil, "", `path,ok,stage`},
		{"stdout", "-", "", nil, "stdout", `{"path":"a.png","ok":true`},
		{"unknown extension", filepath.Join(other, "r.txt"), "", ErrFormat, "", ""},
		{"the job's job.json", filepath.Join(dir, "job.json"), "jsonl", job.ErrOwnFile, "", ""},
		{"a result file", job.ResultFile(dir, 0), "jsonl", job.ErrOwnFile, "", ""},
		{"the job directory", dir, "jsonl", job.ErrOwnFile, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			c, err := CollectTo(context.Background(), dir, tc.out, tc.format, &stdout)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if now, _ := os.ReadFile(filepath.Join(dir, "job.json")); !bytes.Equal(now, jobJSON) {
				t.Fatal("job.json changed")
			}
			if tc.err != nil {
				if stdout.Len() > 0 {
					t.Errorf("wrote to stdout: %q", stdout.String())
				}
				return
			}
			got := stdout.String()
			where := tc.where
			if where == "" {
				where = tc.out
				b, err := os.ReadFile(tc.out)
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			}
			if c.Where != where || c.Inputs != 2 || c.OK != 1 || c.Pending != 1 || c.Skipped != 2 {
				t.Errorf("got %+v, want 2 inputs, 1 ok, 1 pending, 2 skipped, written to %s", c, where)
			}
			if !strings.HasPrefix(got, tc.first) {
				t.Errorf("output starts %.60q, want %q", got, tc.first)
			}
		})
	}
}
