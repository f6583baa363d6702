package jobsetup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/scivision-hpc/scv-hpc/internal/container"
)

// ErrNoDataDir is returned by Dirs when the data directory is missing, unreadable or
// not a directory.
var ErrNoDataDir = errors.New("not a readable directory")

// Dirs returns the data directory and the job directory as absolute paths, before
// anything is pulled or scanned. The data directory must exist (ErrNoDataDir). Both are
// bound into the containers (data at container.DataMount, the job's outputs/ at
// container.OutputMount), so both must be paths a bind can express
// (container.ErrBadBindPath): such a path would otherwise fail only once the model
// starts, after pulling and sharding. The job directory need not exist.
func Dirs(data, out string) (dataAbs, outAbs string, err error) {
	if dataAbs, err = filepath.Abs(data); err != nil {
		return "", "", fmt.Errorf("data directory %s: %w", data, err)
	}
	if fi, err := os.Stat(dataAbs); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("data directory %s: %w", data, ErrNoDataDir)
	}
	if outAbs, err = filepath.Abs(out); err != nil {
		return "", "", fmt.Errorf("job directory %s: %w", out, err)
	}
	if err := container.CheckBindPath("data directory", dataAbs); err != nil {
		return "", "", err
	}
	if err := container.CheckBindPath("job directory", outAbs); err != nil {
		return "", "", err
	}
	return dataAbs, outAbs, nil
}
