package jobsetup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// TestOpenList: a job made from an input list is compared by the list on a resume,
// never by a scan of the data root (which holds more files than the list names).
func TestOpenList(t *testing.T) {
	for _, tc := range []struct {
		name    string
		list    string // the list given on the resume; "" for none
		rescan  bool
		outcome Outcome
		err     string // "", "changed" (a *ChangedError of the data) or "needs list"
		inputs  []string
	}{
		{"same list resumes", "c.png\na.png\n", false, Resumed, "", []string{"c.png", "a.png"}},
		{"same list on stdin resumes", "-", false, Resumed, "", []string{"c.png", "a.png"}},
		{"no list: not compared", "", false, Resumed, "", []string{"c.png", "a.png"}},
		{"entry added", "c.png\na.png\nb.png\n", false, "", "changed", nil},
		{"order changed", "a.png\nc.png\n", false, "", "changed", nil},
		{"entry added, --rescan", "c.png\na.png\nb.png\n", true, Rescanned, "", []string{"c.png", "a.png", "b.png"}},
		{"other plan, --rescan, no list", "", true, "", "needs list", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, out := t.TempDir(), t.TempDir()
			files(t, data, "a.png", "b.png", "c.png")
			first := filepath.Join(t.TempDir(), "list.txt")
			os.WriteFile(first, []byte("c.png\na.png\n"), 0o644)
			s := spec(t, data, out)
			var err error
			if s.List, err = OpenList(first, nil); err != nil {
				t.Fatal(err)
			}
			j, oc, err := Open(context.Background(), s)
			if err != nil || oc != Created || j.Inputs != 2 || j.FilesFrom != first {
				t.Fatalf("first Open: %+v %s %v", j, oc, err)
			}
			s.List = nil
			switch {
			case tc.list == "-":
				s.List, err = OpenList("-", strings.NewReader("c.png\na.png\n"))
			case tc.list != "":
				p := filepath.Join(t.TempDir(), "list2.txt")
				os.WriteFile(p, []byte(tc.list), 0o644)
				s.List, err = OpenList(p, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.List.Close()
			if tc.list == "" && tc.rescan {
				s.Plan, s.PlanSet = sharding.Plan{ShardSize: 1}, true
			}
			s.Rescan = tc.rescan
			j, oc, err = Open(context.Background(), s)
			switch tc.err {
			case "":
				if err != nil || oc != tc.outcome {
					t.Fatalf("Open: %s %v, want %s", oc, err, tc.outcome)
				}
			case "changed":
				var ce *ChangedError
				if !errors.As(err, &ce) || ce.What != "data" {
					t.Fatalf("Open: %v, want a changed data error", err)
				}
				return
			default:
				if !errors.Is(err, ErrListNeeded) {
					t.Fatalf("Open: %v, want ErrListNeeded", err)
				}
				return
			}
			var got []string
			for i := range j.Shards {
				sharding.ReadShard(out, i, func(rel string) error { got = append(got, rel); return nil })
			}
			if strings.Join(got, " ") != strings.Join(tc.inputs, " ") {
				t.Errorf("inputs %q, want %q", got, tc.inputs)
			}
			if j2, _ := job.Load(out); j2.FilesFrom == "" {
				t.Errorf("job.json lost files_from")
			}
		})
	}
}

// TestOpenListStdinCopy: the copy of a list read from stdin is removed by Close.
func TestOpenListStdinCopy(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	l, err := OpenList("-", strings.NewReader("a.png\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(l.path); err != nil || string(b) != "a.png\n" {
		t.Fatalf("copy: %q %v", b, err)
	}
	l.Close()
	if _, err := os.Stat(l.path); !os.IsNotExist(err) {
		t.Errorf("the copy of stdin is still there: %v", err)
	}
	if _, err := OpenList(filepath.Join(t.TempDir(), "none"), nil); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "input list") {
		t.Errorf("missing list: %v, want an input list error wrapping os.ErrNotExist", err)
	}
}
