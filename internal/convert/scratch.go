package convert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
)

// scratchPrefix starts the name of every scratch directory a conversion makes
// in TMPDIR: "scv-hpc-KIND-HOST-PID-RANDOM".
const scratchPrefix = "scv-hpc-"

// MkScratch makes a scratch directory for kind ("convert", "layers") in dir.
// Its name carries this host and process, so that SweepScratch can tell, after
// a crash or SIGKILL, which ones nobody owns any more.
func MkScratch(dir, kind string) (string, error) {
	host, _ := os.Hostname()
	host = strings.NewReplacer("-", "_", "/", "_").Replace(host)
	p, err := os.MkdirTemp(dir, fmt.Sprintf("%s%s-%s-%d-", scratchPrefix, kind, host, os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("make a scratch directory in %s: %w", dir, spaceHint(err, "the temporary directory", dir))
	}
	return p, nil
}

// SweepScratch removes the scratch directories in dir that processes of this
// host left behind when they died (their pid no longer runs), and returns
// their paths. Directories of other hosts (a shared TMPDIR) and of live
// processes are left alone, as are names it did not make.
func SweepScratch(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	host, _ := os.Hostname()
	host = strings.NewReplacer("-", "_", "/", "_").Replace(host)
	var removed []string
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, scratchPrefix) {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(name, scratchPrefix), "-")
		if len(parts) != 4 || parts[1] != host {
			continue
		}
		pid, err := strconv.Atoi(parts[2])
		if err != nil || pid <= 0 || pidAlive(pid) {
			continue
		}
		p := filepath.Join(dir, name)
		if err := fsutil.RemoveAll(p); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

func pidAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
