// Package results owns the result files of a job, results/NNNNNN.jsonl: one compact
// JSON object per input. Lines are appended whole with a single write(2) on an
// O_APPEND file, so concurrent workers never interleave and a kill leaves at most one
// torn last line, which readers ignore and the next writer truncates. On top of the
// files it gives resume sets (Outcomes, Failed), per-shard status (Summarize) and the
// merged output (Collect).
package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Stages name where an input failed (Record.Stage).
const (
	StagePredict = "predict" // the model answered ok:false
	StageLoad    = "load"    // the model process never became ready (a run-stopping LoadError)
	StageTimeout = "timeout" // no answer within the item timeout
	StageCrash   = "crash"   // the model process died with the input in flight
	// StagePending marks, in collected output only, an input that has no result yet.
	StagePending = "pending"
)

// Record is one result line.
type Record struct {
	Path     string          `json:"path"` // relative to the data root, as in the shard file
	OK       bool            `json:"ok"`
	Result   json.RawMessage `json:"result,omitempty"`
	Error    string          `json:"error,omitempty"`
	Stage    string          `json:"stage,omitempty"`
	MS       int64           `json:"ms"`
	Attempts int             `json:"attempts,omitempty"`
	// T is when the line was written, in unix milliseconds (WriteBatch sets it when
	// zero); report and status --watch draw the timeline from it.
	T int64 `json:"t,omitempty"`
}

// Writer appends records to one result file; it is safe for concurrent use.
type Writer struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	broken error // set when a failed write could not be undone
}

// OpenWriter opens (creating it and its directory if needed) the result file at path
// for appending. A last line without '\n', left by a process killed mid-write, is
// truncated away first.
func OpenWriter(path string) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open results %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open results %s: %w", path, err)
	}
	if err := truncateTornTail(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("open results %s: %w", path, err)
	}
	return &Writer{f: f, path: path}, nil
}

// truncateTornTail cuts the file after its last '\n'.
func truncateTornTail(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return nil
	}
	return f.Truncate(end)
}

// Write appends r as one line. The line is marshalled first (json.Marshal escapes
// every newline, RawMessage results are compacted) and written with one write call;
// if that write fails half-way the partial line is cut off again, so the next
// record starts on a clean line.
func (w *Writer) Write(r Record) error {
	return w.WriteBatch([]Record{r})
}

// WriteBatch appends recs as lines with a single write(2), so that a batch of answers
// costs one system call. Every line is whole before the write starts; should the write
// stop part-way (a full disk), what it wrote is cut off again, and a crash at any moment
// leaves at most one partial last line, which readers ignore.
func (w *Writer) WriteBatch(recs []Record) error {
	var buf []byte
	now := time.Now().UnixMilli()
	for _, r := range recs {
		if r.T == 0 {
			r.T = now
		}
		if r.Path == "" {
			return fmt.Errorf("write result to %s: record has no path", w.path)
		}
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("write result for %s: %w", r.Path, err)
		}
		buf = append(append(buf, line...), '\n')
	}
	if len(buf) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.broken != nil {
		return w.broken
	}
	n, err := w.f.Write(buf)
	if err == nil {
		return nil
	}
	err = fmt.Errorf("write %d result(s) from %s on to %s: %w", len(recs), recs[0].Path, w.path, err)
	if n > 0 {
		if fi, serr := w.f.Stat(); serr != nil || w.f.Truncate(fi.Size()-int64(n)) != nil {
			w.broken = fmt.Errorf("%w; the file now ends with a partial line, reopen it", err)
			return w.broken
		}
	}
	return err
}

// Close syncs and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	serr := w.f.Sync()
	cerr := w.f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("close results %s: %w", w.path, err)
	}
	return nil
}
