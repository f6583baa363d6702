package results

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// Collected is what CollectTo wrote.
type Collected struct {
	Totals
	Where   string // "stdout", or the file written
	Skipped int64  // files the scan of the job's data left out: not inputs of the job
}

// CollectTo writes the merged results of the job in jobDir (Collect) to out: a file,
// replaced atomically, or stdout for "-". format is FormatFor's: given, or from out's
// extension (ErrFormat when neither tells). out is refused before anything is read
// when it is one of the job's own files (job.ErrOwnFile, see job.Dir.CheckOutput).
// The errors of the format and of the job's loading are returned as they are (each
// names its input); a refused out is prefixed "collect -o OUT: ", an error of the
// merge or the write "collect JOBDIR: ".
func CollectTo(ctx context.Context, jobDir, out, format string, stdout io.Writer) (Collected, error) {
	var c Collected
	given := jobDir
	f, err := FormatFor(out, format)
	if err != nil {
		return c, err
	}
	if jobDir, err = filepath.Abs(jobDir); err != nil {
		return c, err
	}
	j, err := job.Load(jobDir)
	if err != nil {
		return c, err
	}
	c.Skipped = j.Skipped
	if out != "-" {
		if err := job.Dir(jobDir).CheckOutput(out); err != nil {
			return c, fmt.Errorf("collect -o %s: %w", out, err)
		}
	}
	c.Where, err = fsutil.WriteOutput(out, stdout, func(w io.Writer) error {
		c.Totals, err = collect(ctx, jobDir, j, w, f, 0)
		return err
	})
	if err != nil {
		return c, fmt.Errorf("collect %s: %w", given, err)
	}
	return c, nil
}
