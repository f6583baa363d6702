package results

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

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
func Collect(ctx context.Context, jobDir string, w io.Writer, format string) (Totals, error) {
	var emit func(Record) error
	bw := bufio.NewWriterSize(w, 256<<10)
	var cw *csv.Writer
	switch format {
	case FormatJSONL:
		emit = func(r Record) error {
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode result of %s: %w", r.Path, err)
			}
			bw.Write(b)
			return bw.WriteByte('\n')
		}
	case FormatCSV:
		cw = csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return Totals{}, err
		}
		emit = func(r Record) error {
			return cw.Write([]string{r.Path, strconv.FormatBool(r.OK), r.Stage, r.Error,
				strconv.FormatInt(r.MS, 10), string(r.Result)})
		}
	default:
		return Totals{}, fmt.Errorf("collect: unknown format %q; use %s or %s", format, FormatJSONL, FormatCSV)
	}
	j, err := job.Load(jobDir)
	if err != nil {
		return Totals{}, err
	}
	var t Totals
	for i := 0; i < j.Shards; i++ {
		if err := ctx.Err(); err != nil {
			return t, fmt.Errorf("collect %s: %w", jobDir, err)
		}
		fin, err := Final(job.ResultFile(jobDir, i))
		if err != nil {
			return t, fmt.Errorf("collect shard %d: %w", i, err)
		}
		st, err := eachInput(jobDir, i, fin, func(r Record) bool { return r.OK }, func(rel string, r Record, found bool) error {
			if !found {
				r = Record{Path: rel, Stage: StagePending, Error: "no result yet"}
			}
			return emit(r)
		})
		t.add(st.Inputs, st.OK, st.Failed, st.Pending)
		if err != nil {
			return t, fmt.Errorf("collect shard %d: %w", i, err)
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return t, fmt.Errorf("collect: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return t, fmt.Errorf("collect: %w", err)
	}
	return t, nil
}
