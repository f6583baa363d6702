package results

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestWriterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results", "000000.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 10_000
	// Results of varying length, some with newlines inside strings and pretty JSON,
	// so a torn or interleaved write would show.
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := Record{Path: fmt.Sprintf("w%d/%06d.png", g, i), OK: i%3 != 0, MS: int64(i)}
				if r.OK {
					r.Result = json.RawMessage(fmt.Sprintf("{\n  \"faces\": %d,\n  \"pad\": %q\n}", i, strings.Repeat("x", i%300)))
				} else {
					r.Error, r.Stage = "boom\nline two", StagePredict
				}
				if err := w.Write(r); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if n := bytes.Count(raw, []byte("\n")); n != workers*each {
		t.Fatalf("%d lines, want %d", n, workers*each)
	}
	next := make([]int, workers)
	err = Read(path, func(r Record) error {
		var g, i int
		if _, err := fmt.Sscanf(r.Path, "w%d/%06d.png", &g, &i); err != nil {
			return err
		}
		if i != next[g] {
			return fmt.Errorf("worker %d: record %d after %d", g, i, next[g]-1)
		}
		next[g]++
		if r.OK && !bytes.Contains(r.Result, []byte(fmt.Sprintf(`"faces":%d,`, i))) {
			return fmt.Errorf("result of %s not compacted or wrong: %s", r.Path, r.Result)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestWriterChild is the child process of TestWriterKilled: it appends records
// forever until it is killed.
func TestWriterChild(t *testing.T) {
	path, round := os.Getenv("SCV_RESULTS_CHILD_FILE"), os.Getenv("SCV_RESULTS_CHILD_ROUND")
	if path == "" {
		t.Skip("child process of TestWriterKilled")
	}
	w, err := OpenWriter(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	big := strings.Repeat("y", 5000) // lines of several KiB make a mid-line kill possible
	for i := 0; ; i++ {
		if err := w.Write(Record{Path: fmt.Sprintf("r%s/%d", round, i), OK: true,
			Result: json.RawMessage(strconv.Quote(big[:i%5000])), MS: int64(i)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func TestWriterKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "000007.jsonl")
	const rounds = 4
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "SCV_RESULTS_CHILD_FILE="+path, fmt.Sprint("SCV_RESULTS_CHILD_ROUND=", round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			fi, err := os.Stat(path)
			if err == nil && fi.Size() > int64(round+1)<<20 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("child wrote nothing: %s", stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if round == 1 {
			// Simulate the worst a kill can do: half a line at the end.
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.WriteString(`{"path":"torn/1","ok":tr`)
			f.Close()
		}
	}
	// Every complete line parses; each round's records are 0..n-1 with no gap or
	// duplicate; a torn tail from the last kill, if any, is ignored.
	counts := map[string]int{}
	err := Read(path, func(r Record) error {
		round, num, _ := strings.Cut(r.Path, "/")
		i, _ := strconv.Atoi(num)
		if round == "torn" || i != counts[round] {
			return fmt.Errorf("unexpected record %s after %d of %s", r.Path, counts[round], round)
		}
		counts[round]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != rounds {
		t.Fatalf("records of %d rounds, want %d: %v", len(counts), rounds, counts)
	}
	// Reopening cuts any torn tail, and new lines start clean.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"path":"torn/2"`)
	f.Close()
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(Record{Path: "after", OK: true})
	w.Close()
	raw, _ := os.ReadFile(path)
	if !regexp.MustCompile(`\n\{"path":"after","ok":true,"ms":0,"t":\d+\}\n$`).Match(raw) {
		t.Fatalf("tail after reopen: %q", raw[max(0, len(raw)-80):])
	}
	total := 0
	if err := Read(path, func(Record) error { total++; return nil }); err != nil {
		t.Fatal(err)
	}
	want := 1
	for _, n := range counts {
		want += n
	}
	if total != want || bytes.Count(raw, []byte("\n")) != want {
		t.Fatalf("%d records, %d lines; want %d", total, bytes.Count(raw, []byte("\n")), want)
	}
}

func TestOpenWriterTruncatesTornTail(t *testing.T) {
	long := strings.Repeat("z", 200_000) // longer than the backwards read buffer
	tests := []struct{ name, before, after string }{
		{"empty", "", ""},
		{"clean", "{\"path\":\"a\",\"ok\":true,\"ms\":0}\n", "{\"path\":\"a\",\"ok\":true,\"ms\":0}\n"},
		{"torn only", "{\"path\":\"a\",\"o", ""},
		{"torn after lines", "L1\nL2\n{\"pa", "L1\nL2\n"},
		{"long torn tail", "L1\n" + long, "L1\n"},
		{"long torn without newline", long, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "r.jsonl")
			os.WriteFile(path, []byte(tc.before), 0o644)
			w, err := OpenWriter(path)
			if err != nil {
				t.Fatal(err)
			}
			w.Close()
			if got, _ := os.ReadFile(path); string(got) != tc.after {
				t.Fatalf("after open: %.60q, want %.60q", got, tc.after)
			}
		})
	}
}

func TestWriterRejects(t *testing.T) {
	w, err := OpenWriter(filepath.Join(t.TempDir(), "r.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Write(Record{OK: true}); err == nil {
		t.Error("record without path accepted")
	}
	if err := w.Write(Record{Path: "a", Result: json.RawMessage("{not json")}); err == nil {
		t.Error("invalid result JSON accepted")
	}
	if _, err := OpenWriter(filepath.Join(t.TempDir(), "file", "x.jsonl")); err != nil {
		t.Errorf("parent directory not created: %v", err)
	}
}

// TestWriteBatchFileLimit: a batch whose write stops part-way (here at the file size
// limit, RLIMIT_FSIZE, in a child process) is cut off again, so the file still ends
// with the last whole line and nothing of the batch is trusted.
func TestWriteBatchFileLimit(t *testing.T) {
	if path := os.Getenv("SCV_RESULTS_FSIZE_FILE"); path != "" {
		writeBatchUnderLimit(path)
		return
	}
	path := filepath.Join(t.TempDir(), "000000.jsonl")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch([]Record{{Path: "a.png", OK: true, Result: json.RawMessage(`{"n":1}`)}, {Path: "b.png", Error: "bad", Stage: StagePredict}}); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch([]Record{{Path: "c.png", OK: true}, {Path: ""}}); err == nil || !strings.Contains(err.Error(), "no path") {
		t.Errorf("a batch with a record without path: %v", err)
	}
	w.Close()
	before, _ := os.ReadFile(path)

	cmd := exec.Command(os.Args[0], "-test.run=^TestWriteBatchFileLimit$")
	cmd.Env = append(os.Environ(), "SCV_RESULTS_FSIZE_FILE="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "file too large") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("a batch cut short left its part behind:\nbefore %q\nafter  %q", before, after)
	}
	recs, err := Final(path)
	if err != nil || len(recs) != 2 {
		t.Errorf("read after the failed batch: %d records, %v", len(recs), err)
	}
}

// writeBatchUnderLimit runs in the child: it lets the file grow by 40 bytes more, then
// writes a batch of three longer lines and reports the error.
func writeBatchUnderLimit(path string) {
	signal.Ignore(syscall.SIGXFSZ) // EFBIG instead of death
	fi, err := os.Stat(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	limit := uint64(fi.Size() + 40)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	w, err := OpenWriter(path)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	pad := strings.Repeat("x", 30)
	err = w.WriteBatch([]Record{{Path: "d-" + pad, OK: true}, {Path: "e-" + pad, OK: true}, {Path: "f-" + pad, OK: true}})
	fmt.Println(err)
	os.Exit(0)
}
