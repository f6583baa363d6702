package slurm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// DefaultMaxArraySize is Slurm's default MaxArraySize: array indices run 0..1000.
const DefaultMaxArraySize = 1001

// ErrNoSlurm is returned when a Slurm client program is not installed.
var ErrNoSlurm = errors.New("slurm client not found")

// Client runs Slurm's command-line clients.
type Client struct {
	// Env is added to the environment of the process for every Slurm command
	// (for example SLURM_CONF=/path/slurm.conf); SLURM_CONF set in the process
	// environment is honoured without it.
	Env []string
}

// run runs a Slurm client and returns its stdout; a failure carries Slurm's
// own message from stderr.
func (c *Client) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w on PATH", name, ErrNoSlurm)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), c.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if ctx.Err() != nil {
			return stdout.Bytes(), fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return stdout.Bytes(), &CommandError{Command: append([]string{name}, args...), Message: msg, Err: err}
	}
	return stdout.Bytes(), nil
}

// CommandError is a Slurm client that exited with an error; Message is what it
// printed.
type CommandError struct {
	Command []string
	Message string
	Err     error
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s failed (%v): %s", e.Command[0], e.Err, e.Message)
}

func (e *CommandError) Unwrap() error { return e.Err }

// MaxArraySize reads MaxArraySize from 'scontrol show config'.
func (c *Client) MaxArraySize(ctx context.Context) (int, error) {
	out, err := c.run(ctx, "scontrol", "show", "config")
	if err != nil {
		return 0, fmt.Errorf("read Slurm's MaxArraySize: %w", err)
	}
	return parseMaxArraySize(out)
}

func parseMaxArraySize(out []byte) (int, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.TrimSpace(k) != "MaxArraySize" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return 0, fmt.Errorf("scontrol show config: bad MaxArraySize %q", strings.TrimSpace(v))
		}
		return n, nil
	}
	return DefaultMaxArraySize, nil
}

// Chunk is the shards of one array: task T runs Shards[T]. Contiguous shards
// are mapped by an offset (Shards[0]+T); others are listed in the script.
type Chunk struct {
	Shards []int
	Listed bool
}

// Offset is the shard of task 0 of a contiguous chunk.
func (c Chunk) Offset() int {
	if c.Listed || len(c.Shards) == 0 {
		return 0
	}
	return c.Shards[0]
}

// PlanArrays splits shards into arrays whose task indices stay below
// maxArraySize: never an index ≥ MaxArraySize, whatever the shard numbers.
func PlanArrays(shards []int, maxArraySize int) []Chunk {
	if maxArraySize < 1 {
		maxArraySize = DefaultMaxArraySize
	}
	var chunks []Chunk
	for start := 0; start < len(shards); start += maxArraySize {
		end := min(start+maxArraySize, len(shards))
		part := shards[start:end]
		listed := false
		for i := 1; i < len(part); i++ {
			if part[i] != part[0]+i {
				listed = true
				break
			}
		}
		chunks = append(chunks, Chunk{Shards: part, Listed: listed})
	}
	return chunks
}

// ArraySpec is the --array value for n tasks, at most maxParallel at once.
func ArraySpec(n, maxParallel int) string {
	s := fmt.Sprintf("0-%d", n-1)
	if maxParallel > 0 {
		s += "%" + strconv.Itoa(maxParallel)
	}
	return s
}

// SubmitRequest is one submission of shards of a job.
type SubmitRequest struct {
	JobDir   string    // absolute job directory
	Job      *job.Job  // saved to JobDir/job.json after each array is accepted
	Template *Template // nil: the embedded template
	// Params holds the resources and the scv-hpc command; JobName, Array,
	// Offset and ShardList are set per array.
	Params       Params
	Shards       []int
	MaxArraySize int // 0: DefaultMaxArraySize
	MaxParallel  int // tasks at once (%M); with several arrays each waits for the previous one
	SbatchArgs   []string
	DryRun       bool // render and plan only; run nothing, record nothing
}

// Submission is one array: its script, the exact sbatch command, and (unless a
// dry run) what Slurm answered.
type Submission struct {
	Array   job.Array
	Script  string   // absolute path of the rendered script
	Command []string // sbatch argv
}

// dependencyPlaceholder stands for the job ID of the previous array in a dry run.
const dependencyPlaceholder = "<job id of the previous array>"

// Submit renders one script per array into the job directory and, unless
// DryRun, submits each with 'sbatch --parsable', records the array in job.json
// at once (so a failure half way leaves the accepted arrays tracked) and logs
// the command and Slurm's answer to logs/sbatch.log.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) ([]Submission, error) {
	if len(req.Shards) == 0 {
		return nil, errors.New("submit: no shards to run")
	}
	tmpl := req.Template
	if tmpl == nil {
		tmpl = DefaultTemplate()
	}
	if req.Job.Slurm == nil {
		req.Job.Slurm = &job.Slurm{}
	}
	if req.MaxArraySize <= 0 {
		req.MaxArraySize = DefaultMaxArraySize
	}
	req.Job.Slurm.MaxArraySize = req.MaxArraySize
	dir := job.Dir(req.JobDir)
	if err := os.MkdirAll(dir.LogsDir(), 0o755); err != nil {
		return nil, fmt.Errorf("submit: %w", err)
	}
	chunks := PlanArrays(req.Shards, req.MaxArraySize)
	var subs []Submission
	prevID := ""
	base := len(req.Job.Slurm.Arrays)
	for k, ch := range chunks {
		if err := ctx.Err(); err != nil {
			return subs, err
		}
		n := base + k
		name := job.ScriptName(n)
		p := req.Params
		p.Array = ArraySpec(len(ch.Shards), req.MaxParallel)
		p.Offset, p.ShardList = ch.Offset(), nil
		if ch.Listed {
			p.ShardList = ch.Shards
		}
		script := dir.Script(n)
		if err := fsutil.WriteAtomic(script, 0o755, func(w io.Writer) error { return tmpl.Render(w, p) }); err != nil {
			return subs, fmt.Errorf("write %s: %w", script, err)
		}
		argv := []string{"sbatch", "--parsable", "--chdir=" + req.JobDir, "--output=" + job.SlurmOutput}
		if req.MaxParallel > 0 && k > 0 {
			dep := prevID
			if req.DryRun {
				dep = dependencyPlaceholder
			}
			argv = append(argv, "--dependency=afterany:"+dep)
		}
		argv = append(argv, req.SbatchArgs...)
		argv = append(argv, script)
		sub := Submission{Script: script, Command: argv, Array: job.Array{Script: name, Shards: ch.Shards}}
		if req.DryRun {
			subs = append(subs, sub)
			continue
		}
		out, err := c.run(ctx, argv[0], argv[1:]...)
		logSbatch(req.JobDir, argv, out, err)
		if err != nil {
			return subs, submitError(k, len(chunks), subs, err)
		}
		id, cluster, err := parseParsable(out)
		if err != nil {
			return subs, fmt.Errorf("sbatch accepted array %d of %d but %v; check 'squeue --me' and cancel it by hand", k+1, len(chunks), err)
		}
		sub.Array.JobID, sub.Array.Cluster, sub.Array.Submitted = id, cluster, time.Now().UTC()
		if err := job.AddArray(req.JobDir, req.Job, req.MaxArraySize, sub.Array); err != nil {
			return subs, fmt.Errorf("array %s was submitted but could not be recorded (cancel it with 'scancel %s'): %w", id, id, err)
		}
		subs = append(subs, sub)
		prevID = id
	}
	return subs, nil
}

func submitError(k, total int, done []Submission, err error) error {
	msg := "sbatch refused the job"
	if total > 1 {
		msg = fmt.Sprintf("sbatch refused array %d of %d", k+1, total)
		if len(done) > 0 {
			ids := make([]string, len(done))
			for i, s := range done {
				ids[i] = s.Array.JobID
			}
			msg += fmt.Sprintf(" (arrays %s were submitted and are recorded in job.json)", strings.Join(ids, ", "))
		}
	}
	var ce *CommandError
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: %s", msg, ce.Message)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// parseParsable reads 'sbatch --parsable' output: "jobid" or "jobid;cluster".
func parseParsable(out []byte) (id, cluster string, err error) {
	line := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = strings.TrimSpace(line[i+1:])
	}
	id, cluster, _ = strings.Cut(line, ";")
	if _, err := strconv.ParseUint(id, 10, 64); err != nil || id == "" {
		return "", "", fmt.Errorf("its answer %q is not a job id", line)
	}
	return id, cluster, nil
}

// logSbatch appends the command and Slurm's answer to logs/sbatch.log; a
// failure to log does not fail the submission.
func logSbatch(jobDir string, argv []string, out []byte, err error) {
	f, ferr := os.OpenFile(job.Dir(jobDir).SbatchLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	answer := strings.TrimSpace(string(out))
	if err != nil {
		answer = "ERROR " + err.Error()
	}
	fmt.Fprintf(f, "%s %s\n  -> %s\n", time.Now().UTC().Format(time.RFC3339), QuoteArgs(argv), answer)
}

// JobRequest is one submission of shards of a job with its saved options.
type JobRequest struct {
	JobDir   string
	Job      *job.Job
	Options  *Options
	Template *Template // nil: the embedded one
	Shards   []int
	RunArgs  []string // extra run-shard flags (--retry-failed)
	DryRun   bool
}

// JobSubmission is what SubmitJob did: the arrays, the MaxArraySize used, and, for a
// dry run where Slurm could not be asked, why the default was used.
type JobSubmission struct {
	Arrays       []Submission
	MaxArraySize int
	MaxArrayErr  error
}

// SubmitJob asks Slurm for MaxArraySize (a dry run waits at most 3 s for it and falls
// back to DefaultMaxArraySize: Slurm may be absent there), renders the parameters and
// submits the shards (Submit).
func (c *Client) SubmitJob(ctx context.Context, r JobRequest) (*JobSubmission, error) {
	qctx := ctx
	if r.DryRun {
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
	}
	res := &JobSubmission{}
	maxArray, err := c.MaxArraySize(qctx)
	if err != nil {
		if !r.DryRun {
			return nil, err
		}
		maxArray, res.MaxArrayErr = DefaultMaxArraySize, err
	}
	res.MaxArraySize = maxArray
	p, err := r.Options.Params(r.Job, r.JobDir, r.RunArgs)
	if err != nil {
		return nil, err
	}
	subs, err := c.Submit(ctx, SubmitRequest{
		JobDir: r.JobDir, Job: r.Job, Template: r.Template, Params: p, Shards: r.Shards,
		MaxArraySize: maxArray, MaxParallel: r.Options.MaxParallel, SbatchArgs: r.Options.SbatchArgs, DryRun: r.DryRun,
	})
	res.Arrays = subs
	if err != nil {
		return res, fmt.Errorf("submit %s: %w", r.JobDir, err)
	}
	return res, nil
}
