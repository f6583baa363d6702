package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// session is one RunShard or RunJob: the job, the workers and their model
// processes, which live across the shards the session runs.
type session struct {
	o       config
	job     *job.Job
	dir     string
	outputs string // the job's outputs directory, absolute: bound at /out
	scratch string // base of the workers' /scratch, removed at the end
	tick    time.Duration
	workers []*worker
}

// newSession makes the workers, at most one per pending input, each with its
// scratch directory and log; on error what it made is removed again.
func newSession(jobDir string, j *job.Job, c config, pending int64) (_ *session, err error) {
	// The model finds the outputs directory by its host path too (SCV_OUTPUT_HOST), and
	// a relative path would mean nothing inside the container: made absolute. It is
	// created here as well, for jobs saved before it existed.
	outputs, err := filepath.Abs(job.OutputsDir(jobDir))
	if err == nil {
		err = os.MkdirAll(outputs, 0o755)
	}
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	if err := os.MkdirAll(job.LogsDir(jobDir), 0o755); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	scratch, err := scratchDir(c.scratch)
	if err != nil {
		return nil, err
	}
	s := &session{o: c, job: j, dir: jobDir, outputs: outputs, scratch: scratch,
		tick: max(5*time.Millisecond, min(time.Second, c.itemTimeout/8))}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	nw := int(min(int64(c.workers), pending))
	if len(c.GPUs) > 0 && c.Runtime.Name() == container.Builtin {
		c.Log.Warn().Msg("the builtin runtime binds no GPU driver: CUDA_VISIBLE_DEVICES is set, but the model sees no GPU unless the image carries its own driver libraries; use apptainer or singularity for GPU models")
	}
	for i := range nw {
		dir := filepath.Join(scratch, "worker-"+strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("scratch: %w", err)
		}
		env := map[string]string{"SCV_WORKER": strconv.Itoa(i), "SCV_OUTPUT_DIR": container.OutputMount, "SCV_OUTPUT_HOST": outputs}
		for k, v := range c.Env {
			env[k] = v
		}
		wk := &worker{id: i, logf: &workerLog{max: c.MaxLogBytes},
			spec: container.Spec{SIF: j.SIF, Command: j.Predict, DataRoot: j.DataRoot, Scratch: dir, Output: outputs, Env: env}}
		if len(c.GPUs) > 0 {
			wk.spec.GPU = c.GPUs[i]
		}
		s.workers = append(s.workers, wk)
	}
	return s, nil
}

// close ends the model processes (stdin closed, then Grace to exit), closes the
// logs and removes the scratch directories.
func (s *session) close() {
	var wg sync.WaitGroup
	for _, w := range s.workers {
		if w.p != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.p.finish(s.o.Grace)
				w.p = nil
			}()
		}
	}
	wg.Wait()
	for _, w := range s.workers {
		w.logf.Close()
	}
	if s.scratch != "" {
		os.RemoveAll(s.scratch)
	}
}

// scratchDir makes the base of the workers' scratch directories: a new directory
// under base, or under TMPDIR when base is empty. It is removed after the run.
func scratchDir(base string) (string, error) {
	if base != "" {
		if err := os.MkdirAll(base, 0o755); err != nil {
			return "", fmt.Errorf("scratch %s: %w", base, err)
		}
	}
	dir, err := os.MkdirTemp(base, "scv-hpc-scratch-")
	if err != nil {
		if base == "" {
			return "", fmt.Errorf("scratch directory: %w (set --tmpdir)", err)
		}
		return "", fmt.Errorf("scratch %s: %w", base, err)
	}
	return dir, nil
}
