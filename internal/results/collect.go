package results

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// Output formats of Collect.
const (
	FormatJSONL = "jsonl"
	FormatCSV   = "csv"
)

// CSVHeader are the columns of the CSV output; result is the model's JSON text.
var CSVHeader = []string{"path", "ok", "stage", "error", "ms", "result"}

// Collect writes one record per input of the job to w, in shard order: the final
// result of each input (see Final), failures included, and a record with ok false
// and stage "pending" for an input that has none, so nothing is silently missing.
// An input listed twice is written once. format is FormatJSONL or FormatCSV.
//
// JSONL lines are the result lines as written (copied as bytes, never re-encoded;
// runs of lines that are in a result file as they are output are written to w
// straight from the buffer the file was read into, see spanWriter); shards are
// read in parallel by Walk. CSV cells that a spreadsheet would run as a
// formula are escaped (see CSVCell) and every text cell is double-quoted.
func Collect(ctx context.Context, jobDir string, w io.Writer, format string) (Totals, error) {
	return collect(ctx, jobDir, nil, w, format, 0)
}

// collect is Collect with WalkOptions.Workers (0: the default); a nil j is loaded
// from jobDir.
func collect(ctx context.Context, jobDir string, j *job.Job, w io.Writer, format string, workers int) (Totals, error) {
	sw := &spanWriter{w: w, buf: make([]byte, 0, 1<<20)}
	var prepare func(s *Shard) error
	jsonl := false
	switch format {
	case FormatJSONL:
		jsonl = true
		// Each shard's output is put together on the goroutine that read it, as
		// spans: a run of lines that are in the result file as they are output
		// (in list order, untrimmed) is one span of the file buffer, written from
		// there; only the other lines (pending ones, trimmed ones) are copied into
		// Shard.Out. The writer then only writes spans, in shard order.
		prepare = func(s *Shard) error {
			out, spans := s.Out, s.spans
			for k := range s.Entries {
				e := &s.Entries[k]
				if e.n > 0 {
					spans = extend(spans, true, e.off, e.off+e.n)
					continue
				}
				start := len(out)
				var err error
				if out, err = appendJSONL(out, e); err != nil {
					return err
				}
				spans = extend(spans, false, start, len(out))
			}
			s.Out, s.spans = out, spans
			gather(s)
			return nil
		}
	case FormatCSV:
		var head bytes.Buffer
		hw := bufio.NewWriter(&head)
		writeCSVRow(hw, CSVHeader, make([]bool, len(CSVHeader)))
		hw.Flush()
		sw.write(head.Bytes())
		text := []bool{true, false, true, true, false, true}
		prepare = func(s *Shard) error {
			ob := bytes.NewBuffer(s.Out)
			cw := bufio.NewWriterSize(ob, 64<<10)
			for k := range s.Entries {
				r, err := s.Entries[k].Record()
				if err != nil {
					return err
				}
				if err := writeCSVRow(cw, []string{CSVCell(r.Path), strconv.FormatBool(r.OK), CSVCell(r.Stage), CSVCell(r.Error),
					strconv.FormatInt(r.MS, 10), CSVCell(string(r.Result))}, text); err != nil {
					return err
				}
			}
			if err := cw.Flush(); err != nil {
				return err
			}
			s.Out = ob.Bytes()
			s.spans = append(s.spans, span{start: 0, end: len(s.Out)})
			return nil
		}
	default:
		return Totals{}, fmt.Errorf("collect: unknown format %q; use %s or %s", format, FormatJSONL, FormatCSV)
	}
	if j == nil {
		var err error
		if j, err = job.Load(jobDir); err != nil {
			return Totals{}, err
		}
	}
	var t Totals
	err := Walk(ctx, jobDir, j.Shards, WalkOptions{Workers: workers, Prepare: prepare, jsonl: jsonl}, func(s *Shard) error {
		for _, sp := range s.spans {
			b := s.Out
			if sp.data {
				b = s.data
			}
			if err := sw.write(b[sp.start:sp.end]); err != nil {
				return err
			}
		}
		st := s.Status
		t.add(st.Inputs, st.OK, st.Failed, st.Pending)
		return nil
	})
	if err != nil {
		return t, fmt.Errorf("collect %s: %w", jobDir, err)
	}
	if err := sw.flush(); err != nil {
		return t, fmt.Errorf("collect: %w", err)
	}
	return t, nil
}

// gatherMax is the span count above which a shard's output is copied into one
// buffer where it was read, in parallel with the other shards, rather than by
// the writer, which is serial: results out of list order (as workers write them)
// leave a span every few dozen lines.
const gatherMax = 4

// gather puts s's output into one span of Out when it has more than gatherMax.
func gather(s *Shard) {
	if len(s.spans) <= gatherMax {
		return
	}
	buf := s.asm[:0]
	for _, sp := range s.spans {
		b := s.Out
		if sp.data {
			b = s.data
		}
		buf = append(buf, b[sp.start:sp.end]...)
	}
	s.asm, s.Out = s.Out, buf // the old Out is the next gather's buffer
	s.spans = append(s.spans[:0], span{start: 0, end: len(buf)})
}

// appendJSONL appends e's JSONL line to out: its final line, or for a pending
// input a record with stage "pending".
func appendJSONL(out []byte, e *Entry) ([]byte, error) {
	if e.Found {
		return append(append(out, e.Line...), '\n'), nil
	}
	r, _ := e.Record()
	b, err := json.Marshal(r)
	if err != nil {
		return out, fmt.Errorf("encode result of %s: %w", r.Path, err)
	}
	return append(append(out, b...), '\n'), nil
}

// span is a part of a shard's output: bytes start..end of Shard.data (the result
// file) or of Shard.Out.
type span struct {
	data       bool
	start, end int
}

// extend adds bytes start..end of data or Out to spans, as a longer last span when
// they follow it.
func extend(spans []span, data bool, start, end int) []span {
	if n := len(spans) - 1; n >= 0 && spans[n].data == data && spans[n].end == start {
		spans[n].end = end
		return spans
	}
	return append(spans, span{data: data, start: start, end: end})
}

// directWrite is the size from which spanWriter writes a span as it is, without
// copying it into its buffer first.
const directWrite = 64 << 10

// spanWriter writes spans to w: small ones gathered in buf, large ones straight from
// where they are (a whole shard's lines are usually one span of its file buffer).
type spanWriter struct {
	w   io.Writer
	buf []byte
}

func (sw *spanWriter) write(p []byte) error {
	if len(p) >= directWrite {
		if err := sw.flush(); err != nil {
			return err
		}
		_, err := sw.w.Write(p)
		return err
	}
	if len(sw.buf)+len(p) > cap(sw.buf) {
		if err := sw.flush(); err != nil {
			return err
		}
	}
	sw.buf = append(sw.buf, p...)
	return nil
}

func (sw *spanWriter) flush() error {
	if len(sw.buf) == 0 {
		return nil
	}
	_, err := sw.w.Write(sw.buf)
	sw.buf = sw.buf[:0]
	return err
}

// CSVCell escapes a cell against CSV injection as OWASP advises: a cell starting
// with '=', '+', '-', '@', a tab or a carriage return, which a spreadsheet would run
// as a formula, gets a leading single quote (Collect also double-quotes every text
// cell). A negative number such as "-3" is escaped too: the
// advice is to escape every such cell, and the quote is visible, not lost.
func CSVCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// writeCSVRow writes one CSV row (RFC 4180, "\n" line ends): the cells marked text
// are always double-quoted, as the OWASP advice asks of escaped cells, with '"'
// doubled; the others (booleans, integers, the header) are written as they are.
func writeCSVRow(w *bufio.Writer, cells []string, text []bool) error {
	for i, c := range cells {
		if i > 0 {
			w.WriteByte(',')
		}
		if !text[i] {
			w.WriteString(c)
			continue
		}
		w.WriteByte('"')
		w.WriteString(strings.ReplaceAll(c, `"`, `""`))
		w.WriteByte('"')
	}
	return w.WriteByte('\n')
}
