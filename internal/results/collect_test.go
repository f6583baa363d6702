package results

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// referenceCollect is Collect's JSONL output written the plain way, to hold the fast
// reader to: every complete result line (up to its last '\n'; blank ones skipped)
// decoded whole by encoding/json, the last ok line of a path winning over
// everything, else the last line; then the shard's list, each path once, found ones
// as their trimmed line, the others as a pending record. A path is compared as
// written when its JSON string has no escape, else decoded (raw bytes are what the
// shard list holds).
func referenceCollect(dir string, shards int) ([]byte, Totals, error) {
	var out bytes.Buffer
	var tot Totals
	for s := 0; s < shards; s++ {
		data, err := os.ReadFile(job.ResultFile(dir, s))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, tot, err
		}
		type final struct {
			line []byte
			ok   bool
		}
		finals := map[string]final{}
		if nl := bytes.LastIndexByte(data, '\n'); nl >= 0 {
			for _, line := range bytes.Split(data[:nl], []byte("\n")) {
				line = bytes.TrimSpace(line)
				if len(line) == 0 {
					continue
				}
				var r struct {
					Path json.RawMessage `json:"path"`
					OK   bool            `json:"ok"`
				}
				if err := json.Unmarshal(line, &r); err != nil {
					return nil, tot, fmt.Errorf("shard %d: %s: %w", s, line, err)
				}
				var path string
				if raw := r.Path; len(raw) >= 2 && raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0 {
					path = string(raw[1 : len(raw)-1])
				} else if err := json.Unmarshal(raw, &path); err != nil || path == "" {
					return nil, tot, fmt.Errorf("shard %d: %s: no path", s, line)
				}
				if old, found := finals[path]; found && old.ok && !r.OK {
					continue
				}
				finals[path] = final{line, r.OK}
			}
		}
		list, err := os.ReadFile(job.ShardFile(dir, s))
		if err != nil {
			return nil, tot, err
		}
		seen := map[string]bool{}
		for _, p := range strings.Split(string(list), "\n") {
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			tot.Inputs++
			f, found := finals[p]
			switch {
			case !found:
				tot.Pending++
				b, _ := json.Marshal(Record{Path: p, Stage: StagePending, Error: "no result yet"})
				out.Write(b)
			case f.ok:
				tot.OK++
				out.Write(f.line)
			default:
				tot.Failed++
				out.Write(f.line)
			}
			out.WriteByte('\n')
		}
	}
	return out.Bytes(), tot, nil
}

// rawJob writes a job directory whose shard lists and result files hold exactly the
// given bytes.
func rawJob(t testing.TB, lists, results []string) string {
	t.Helper()
	dir := t.TempDir()
	if err := job.Save(dir, &job.Job{Model: "m", DataRoot: "/data", Shards: len(lists)}); err != nil {
		t.Fatal(err)
	}
	for s := range lists {
		if err := os.WriteFile(job.ShardFile(dir, s), []byte(lists[s]), 0o644); err != nil {
			t.Fatal(err)
		}
		if results[s] == "" {
			continue // no result file at all
		}
		if err := os.WriteFile(job.ResultFile(dir, s), []byte(results[s]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// okLine and failLine are result lines as the Writer writes them.
func okLine(path string, n int) string {
	return fmt.Sprintf(`{"path":%s,"ok":true,"result":{"n":%d},"ms":1,"attempts":1,"t":17959189579%02d}`, jsonString(path), n, n%100)
}

func failLine(path, stage string) string {
	return fmt.Sprintf(`{"path":%s,"ok":false,"error":"broke","stage":%q,"ms":2,"attempts":3,"t":1795918957900}`, jsonString(path), stage)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestCollectMatchesReference compares Collect's JSONL output, byte for byte, with
// referenceCollect on inputs that leave the writer's usual shape: duplicates, a
// failure after an ok, an ok after a failure, escaped paths, torn last lines, bad
// UTF-8, CRLF line ends, keys in another order, results out of list order, lines
// for paths the list does not hold, and lists with duplicates and blank lines.
func TestCollectMatchesReference(t *testing.T) {
	inOrder := func(n int) (list, res string) {
		var l, r strings.Builder
		for i := 0; i < n; i++ {
			p := fmt.Sprintf("d/img%04d.png", i)
			l.WriteString(p + "\n")
			r.WriteString(okLine(p, i) + "\n")
		}
		return l.String(), r.String()
	}
	bigList, bigRes := inOrder(3000)
	// As two workers write a shard: batches of 16 in list order, every other pair
	// of batches swapped, a few failures, then a retry that fixes some of them.
	batches := func(n int) string {
		var r strings.Builder
		for b := 0; b*16 < n; b++ {
			k := b ^ 1 // 1, 0, 3, 2, …
			for i := k * 16; i < min(k*16+16, n); i++ {
				p := fmt.Sprintf("d/img%04d.png", i)
				if i%7 == 3 {
					r.WriteString(failLine(p, "predict") + "\n")
				} else if i%50 != 9 { // some never answered: pending
					r.WriteString(okLine(p, i) + "\n")
				}
			}
		}
		for i := 3; i < n; i += 14 {
			r.WriteString(okLine(fmt.Sprintf("d/img%04d.png", i), i) + "\n")
		}
		return r.String()
	}
	quote, tab, bad := `q"uo\te.png`, "t\tab.png", "bad\xff\xfe.png"
	tests := []struct {
		name        string
		lists, ress []string
	}{
		{"in order", []string{bigList}, []string{bigRes}},
		{"no results, empty list", []string{"a\nb\n", ""}, []string{"", ""}},
		{"results cover a prefix", []string{bigList}, []string{bigRes[:len(bigRes)/2+1]}}, // torn in the middle
		{"later failure after an ok", []string{"a\nb\nc\n"},
			[]string{okLine("a", 1) + "\n" + okLine("b", 2) + "\n" + failLine("a", "crash") + "\n" + okLine("c", 3) + "\n"}},
		{"later ok after a failure", []string{"a\nb\nc\n"},
			[]string{failLine("a", "timeout") + "\n" + okLine("b", 2) + "\n" + okLine("c", 3) + "\n" + okLine("a", 4) + "\n"}},
		{"two failures, the last wins", []string{"a\nb\n"},
			[]string{failLine("a", "timeout") + "\n" + failLine("a", "predict") + "\n" + okLine("b", 1) + "\n"}},
		{"two oks, the last wins", []string{"a\nb\n"},
			[]string{okLine("a", 1) + "\n" + okLine("b", 1) + "\n" + okLine("a", 2) + "\n"}},
		{"out of list order", []string{"a\nb\nc\nd\n"},
			[]string{okLine("c", 1) + "\n" + okLine("a", 2) + "\n" + okLine("d", 3) + "\n" + okLine("b", 4) + "\n"}},
		{"escaped paths", []string{quote + "\n" + tab + "\nplain\n" + "ü.png\n"},
			[]string{okLine(quote, 1) + "\n" + failLine(tab, "predict") + "\n" + `{"path":"\u0070lain","ok":true,"result":1}` + "\n" + `{"path":"\u00fc.png","ok":true}` + "\n"}},
		{"torn last line", []string{"a\nb\n"}, []string{okLine("a", 1) + "\n" + okLine("b", 2)}},
		{"torn last line after a complete one", []string{"a\nb\n"}, []string{okLine("a", 1) + "\n" + failLine("a", "crash")[:20]}},
		{"bad UTF-8 in a path and an answer", []string{bad + "\nx\n"},
			[]string{okLine(bad, 1) + "\n" + `{"path":"x","ok":true,"result":"` + "\xc3\x28" + `"}` + "\n"}},
		{"CRLF line ends", []string{"a\nb\nc\n"}, []string{okLine("a", 1) + "\r\n" + failLine("b", "load") + "\r\n" + okLine("c", 3) + "\n"}},
		{"CRLF in the list", []string{"a\r\nb\n"}, []string{okLine("a", 1) + "\n" + okLine("b", 2) + "\n"}},
		{"blank and padded lines", []string{"\na\n\nb\n"}, []string{"\n  " + okLine("a", 1) + "  \n\n\t" + okLine("b", 2) + "\n"}},
		{"other key order", []string{"a\nb\n"}, []string{`{"ok":true,"path":"a","result":[1]}` + "\n" + `{ "path" : "b" , "ok" : false , "stage" : "crash" }` + "\n"}},
		{"paths not in the list", []string{"a\n"}, []string{okLine("zz", 1) + "\n" + okLine("a", 2) + "\n" + okLine("yy", 3) + "\n"}},
		{"list duplicates", []string{"a\nb\na\nc\nc\nb\n"}, []string{okLine("b", 1) + "\n" + failLine("a", "predict") + "\n"}},
		{"sorted list with a duplicate, results twice", []string{"a\na\nb\n"},
			[]string{okLine("a", 1) + "\n" + failLine("a", "crash") + "\n" + okLine("b", 2) + "\n"}},
		{"in list order, every kind of line", []string{`q"x` + "\na\nb\nc\nd\ne\nf\n"},
			[]string{okLine(`q"x`, 0) + "\n" + okLine("a", 1) + "\r\n" + failLine("b", "load") + "\n" + `{"ok":true,"path":"c"}` + "\n\n" +
				"  " + okLine("d", 4) + " \n" + okLine("e", 5)}},
		{"in list order, then a retry", []string{"a\nb\nc\n"},
			[]string{failLine("a", "crash") + "\n" + okLine("b", 2) + "\n" + okLine("c", 3) + "\n" + okLine("a", 4) + "\n"}},
		{"in list order, a corrupt-looking answer copied as is", []string{"a\nb\n"},
			[]string{okLine("a", 1) + "\n" + `{"path":"b","ok":true,"result":{"x":"}"},"t":12}` + "\n"}},
		{"batches out of order, retries, pending", []string{bigList}, []string{batches(3000)}},
		{"out of list order, CRLF and padding", []string{"a\nb\nc\nd\n"},
			[]string{okLine("c", 1) + "\r\n" + " " + failLine("a", "load") + "\n" + okLine("d", 3) + "\n" + "\t" + okLine("b", 4) + " \r\n"}},
		{"unsorted list (as --files-from gives)", []string{"c\na\nd/x\nb\n"},
			[]string{okLine("a", 1) + "\n" + failLine("b", "crash") + "\n" + okLine("c", 3) + "\n" + okLine("b", 4) + "\n"}},
		{"shards of the same size (buffers reused)", []string{bigList, bigList, bigList, bigList, bigList},
			[]string{batches(3000), bigRes, batches(3000), batches(3000), bigRes}},
		{"more shards", []string{bigList, "a\nb\n", "c\n"}, []string{bigRes, okLine("b", 1) + "\n" + okLine("a", 2) + "\n", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := rawJob(t, tc.lists, tc.ress)
			want, wantTot, err := referenceCollect(dir, len(tc.lists))
			if err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{1, 3} {
				var got bytes.Buffer
				tot, err := collect(context.Background(), dir, nil, &got, FormatJSONL, workers)
				if err != nil {
					t.Fatal(err)
				}
				if tot != wantTot {
					t.Errorf("workers %d: totals %+v, want %+v", workers, tot, wantTot)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("workers %d: output differs from the reference:\n%s", workers, firstDiff(got.Bytes(), want))
				}
			}
			// Into a file and a pipe, spans go out with writev(2): the same bytes.
			for _, sink := range []string{"file", "pipe"} {
				if got := collectTo(t, dir, sink); !bytes.Equal(got, want) {
					t.Errorf("to a %s: output differs from the reference:\n%s", sink, firstDiff(got, want))
				}
			}
			// Walk's entries (what status, report and CSV read) say the same.
			var fromEntries bytes.Buffer
			err = Walk(context.Background(), dir, len(tc.lists), WalkOptions{}, func(s *Shard) error {
				for _, e := range s.Entries {
					if e.Found {
						fromEntries.Write(e.Line)
					} else {
						b, _ := json.Marshal(Record{Path: e.Path, Stage: StagePending, Error: "no result yet"})
						fromEntries.Write(b)
					}
					fromEntries.WriteByte('\n')
				}
				return nil
			})
			if err != nil || !bytes.Equal(fromEntries.Bytes(), want) {
				t.Errorf("walk: %v\n%s", err, firstDiff(fromEntries.Bytes(), want))
			}
		})
	}
}

// collectTo runs Collect (JSONL) into a new file or a pipe and returns what it wrote.
func collectTo(t *testing.T, dir, sink string) []byte {
	t.Helper()
	if sink == "file" {
		f, err := os.Create(filepath.Join(t.TempDir(), "out.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := Collect(context.Background(), dir, f, FormatJSONL); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	_, err = Collect(context.Background(), dir, w, FormatJSONL)
	w.Close()
	b := <-got
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want []byte) string {
	g, w := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b []byte
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if !bytes.Equal(a, b) {
			return fmt.Sprintf("line %d:\n got  %q\n want %q", i+1, a, b)
		}
	}
	return "same lines"
}

// FuzzCollectMerge builds a shard from fuzzer bytes, each picking a list entry or a
// result line (ok or failed, as the writer writes it or in another shape, with
// CRLF, padding, escapes) over a few paths, and holds Collect to referenceCollect.
func FuzzCollectMerge(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 0x10, 0x11, 0x12})
	f.Add([]byte{0x10, 0x21, 0x31, 0x10, 0x42, 0x53, 0x64, 0x75, 0xff})
	f.Add([]byte{1, 1, 2, 0x86, 0x97, 0xa1, 0xb2, 0xc0, 0xd3, 0xe4, 0xf5})
	paths := []string{"a.png", "d/b.png", `q"x.png`, "ü.png", "bad\xff.png", "c.png", "e\\f.png", "g.png"}
	f.Fuzz(func(t *testing.T, ops []byte) {
		var list, res strings.Builder
		for k, op := range ops {
			p := paths[op&7]
			switch op >> 4 {
			case 0, 1:
				list.WriteString(p + "\n")
			case 2, 3, 4:
				res.WriteString(okLine(p, k) + "\n")
			case 5, 6:
				res.WriteString(failLine(p, "predict") + "\n")
			case 7:
				res.WriteString(okLine(p, k) + "\r\n")
			case 8:
				res.WriteString(" " + failLine(p, "crash") + "\t\n")
			case 9:
				res.WriteString(`{"ok":true,"path":` + jsonString(p) + "}\n")
			case 10:
				res.WriteString(`{"path":"\u0020` + jsonString(p)[1:] + `,"ok":true}` + "\n")
			case 11:
				res.WriteString("\n")
			case 12:
				res.WriteString(`{"path":` + jsonString(p) + `,"ok":false,"stage":"timeout"}` + "\n")
			default:
				list.WriteString("\n")
			}
		}
		if len(ops) > 0 && ops[len(ops)-1] == 0xff {
			res.WriteString(okLine("a.png", 0)[:17]) // torn
		}
		dir := rawJob(t, []string{list.String()}, []string{res.String() + " "})
		want, wantTot, err := referenceCollect(dir, 1)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		tot, err := collect(context.Background(), dir, nil, &got, FormatJSONL, 1)
		if err != nil {
			t.Fatal(err)
		}
		if tot != wantTot || !bytes.Equal(got.Bytes(), want) {
			t.Fatalf("totals %+v, want %+v; %s", tot, wantTot, firstDiff(got.Bytes(), want))
		}
	})
}
