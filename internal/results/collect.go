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
// JSONL lines are the result lines as written (copied as bytes, never re-encoded);
// shards are read in parallel by Walk. CSV cells that a spreadsheet would run as a
// formula are escaped (see CSVCell) and every text cell is double-quoted.
func Collect(ctx context.Context, jobDir string, w io.Writer, format string) (Totals, error) {
	return collect(ctx, jobDir, w, format, 0)
}

// collect is Collect with WalkOptions.Workers (0: the default).
func collect(ctx context.Context, jobDir string, w io.Writer, format string, workers int) (Totals, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	var prepare func(s *Shard) error
	switch format {
	case FormatJSONL:
		// Each shard's lines are put together on the goroutine that read it; the
		// writer then only copies whole shards, in order.
		prepare = func(s *Shard) error {
			out := s.Out
			for k := range s.Entries {
				e := &s.Entries[k]
				if e.Found {
					out = append(append(out, e.Line...), '\n')
					continue
				}
				r, _ := e.Record()
				b, err := json.Marshal(r)
				if err != nil {
					return fmt.Errorf("encode result of %s: %w", r.Path, err)
				}
				out = append(append(out, b...), '\n')
			}
			s.Out = out
			return nil
		}
	case FormatCSV:
		if err := writeCSVRow(bw, CSVHeader, make([]bool, len(CSVHeader))); err != nil {
			return Totals{}, err
		}
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
			return nil
		}
	default:
		return Totals{}, fmt.Errorf("collect: unknown format %q; use %s or %s", format, FormatJSONL, FormatCSV)
	}
	j, err := job.Load(jobDir)
	if err != nil {
		return Totals{}, err
	}
	var t Totals
	err = Walk(ctx, jobDir, j.Shards, WalkOptions{Workers: workers, Prepare: prepare}, func(s *Shard) error {
		if _, err := bw.Write(s.Out); err != nil {
			return err
		}
		st := s.Status
		t.add(st.Inputs, st.OK, st.Failed, st.Pending)
		return nil
	})
	if err != nil {
		return t, fmt.Errorf("collect %s: %w", jobDir, err)
	}
	if err := bw.Flush(); err != nil {
		return t, fmt.Errorf("collect: %w", err)
	}
	return t, nil
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
