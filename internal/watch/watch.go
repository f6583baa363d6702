// Package watch is the live view of a running job (status --watch): every interval
// it reads the results files (results.Walk, the reader collect and report use) and,
// for a job on Slurm, asks squeue once for all its arrays, then draws per-shard
// progress bars, inputs per second, an ETA and the failures so far. On a terminal
// the view is redrawn in place; elsewhere it prints one line per interval. It
// returns when the job has ended.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// DefaultInterval is how often the view is refreshed when Options.Interval is 0.
const DefaultInterval = 10 * time.Second

// ErrBadInterval is returned for an interval below MinInterval.
var ErrBadInterval = errors.New("bad watch interval")

// MinInterval is the shortest interval accepted: each refresh reads every result
// file and asks the scheduler.
const MinInterval = 100 * time.Millisecond

// Options tune Run. The zero value refreshes every DefaultInterval and draws lines.
type Options struct {
	// Interval between refreshes (default DefaultInterval, at least MinInterval).
	Interval time.Duration
	// Terminal redraws the view in place with ANSI escapes (default: one line per
	// interval, for logs and pipes).
	Terminal bool
	// Width and Height bound the drawing on a terminal (default 100×30).
	Width, Height int
	// Query asks the scheduler for the shards' states, once per refresh; nil for a
	// job that is not on Slurm.
	Query func(context.Context, *job.Job) (map[int]slurm.ShardState, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Snapshot is the job's state at one refresh.
type Snapshot struct {
	Time     time.Time
	Totals   results.Totals
	Shards   []results.ShardStatus
	Stages   map[string]int64 // failed inputs per stage
	First    int64            // earliest answer (unix ms), 0: none
	Last     int64            // latest answer (unix ms)
	Slurm    map[int]slurm.ShardState
	SlurmErr error
}

// Ended reports whether the job has ended: every input has a result, or the job is
// on Slurm and squeue lists no pending or running task of it.
func (s *Snapshot) Ended(onSlurm bool) bool {
	if s.Totals.Pending == 0 {
		return true
	}
	if !onSlurm || s.SlurmErr != nil {
		return false
	}
	for _, st := range s.Slurm {
		if slurm.Active(st.State) {
			return false
		}
	}
	return true
}

// Take reads the job's results and asks the scheduler (query may be nil).
func Take(ctx context.Context, jobDir string, j *job.Job, query func(context.Context, *job.Job) (map[int]slurm.ShardState, error), now time.Time) (*Snapshot, error) {
	s := &Snapshot{Time: now, Stages: map[string]int64{}, Shards: make([]results.ShardStatus, 0, j.Shards)}
	err := results.Walk(ctx, jobDir, j.Shards, results.WalkOptions{}, func(sh *results.Shard) error {
		st := sh.Status
		s.Shards = append(s.Shards, st)
		s.Totals.Inputs += st.Inputs
		s.Totals.OK += st.OK
		s.Totals.Failed += st.Failed
		s.Totals.Pending += st.Pending
		if st.Failed > 0 {
			for k := range sh.Entries {
				if e := &sh.Entries[k]; e.Found && !e.OK {
					s.Stages[e.Stage]++
				}
			}
		}
		if sh.First > 0 && (s.First == 0 || sh.First < s.First) {
			s.First = sh.First
		}
		s.Last = max(s.Last, sh.Last)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if query != nil {
		s.Slurm, s.SlurmErr = query(ctx, j)
	}
	return s, nil
}

// Run refreshes the view of the job in jobDir every interval until the job ends
// (it then draws it once more and returns the last snapshot) or ctx is done.
func Run(ctx context.Context, jobDir string, w io.Writer, o Options) (*Snapshot, error) {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Interval < MinInterval {
		return nil, fmt.Errorf("%w %v: give at least %v", ErrBadInterval, o.Interval, MinInterval)
	}
	if o.Width <= 0 {
		o.Width = 100
	}
	if o.Height <= 0 {
		o.Height = 30
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	j, err := job.Load(jobDir)
	if err != nil {
		return nil, err
	}
	onSlurm := j.Slurm != nil && len(j.Slurm.Arrays) > 0 && o.Query != nil
	query := o.Query
	if !onSlurm {
		query = nil
	}
	v := &view{o: o, jobDir: jobDir, j: j}
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	for {
		s, err := Take(ctx, jobDir, j, query, o.Now())
		if err != nil {
			if ctx.Err() != nil {
				return v.last, ctx.Err()
			}
			return v.last, err
		}
		v.draw(w, s)
		if s.Ended(onSlurm) {
			return s, nil
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-tick.C:
		}
	}
}

// view draws snapshots and remembers what it needs between them.
type view struct {
	o      Options
	jobDir string
	j      *job.Job
	last   *Snapshot
	first  *Snapshot // the first snapshot, for the rate
	lines  int       // lines drawn last time (terminal)
}

// rate is answers per second: over the watch so far, else from the answers' times.
func (v *view) rate(s *Snapshot) float64 {
	answered := func(x *Snapshot) int64 { return x.Totals.OK + x.Totals.Failed }
	if v.first != nil {
		if dt := s.Time.Sub(v.first.Time).Seconds(); dt > 0 && answered(s) > answered(v.first) {
			return float64(answered(s)-answered(v.first)) / dt
		}
	}
	if s.Last > s.First {
		return float64(answered(s)) / (float64(s.Last-s.First) / 1000)
	}
	return 0
}

func (v *view) draw(w io.Writer, s *Snapshot) {
	if v.first == nil {
		v.first = s
	}
	v.last = s
	rate := v.rate(s)
	eta := "-"
	if rate > 0 && s.Totals.Pending > 0 {
		eta = (time.Duration(float64(s.Totals.Pending)/rate) * time.Second).Round(time.Second).String()
	} else if s.Totals.Pending == 0 {
		eta = "done"
	}
	t := s.Totals
	head := fmt.Sprintf("%d/%d inputs ok, %d failed, %d pending; %.1f inputs/s; ETA %s", t.OK, t.Inputs, t.Failed, t.Pending, rate, eta)
	fails := failureLine(s)
	sl := slurmLine(s)
	if !v.o.Terminal {
		line := s.Time.UTC().Format(time.RFC3339) + " " + head
		if fails != "" {
			line += "; " + fails
		}
		if sl != "" {
			line += "; " + sl
		}
		fmt.Fprintln(w, line)
		return
	}
	var b strings.Builder
	if v.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dF\x1b[J", v.lines) // back to the first line drawn, clear below
	}
	out := []string{fmt.Sprintf("job %s (model %s), %s", v.jobDir, v.j.Model, s.Time.Format("15:04:05"))}
	out = append(out, v.shardLines(s)...)
	out = append(out, head)
	if fails != "" {
		out = append(out, fails)
	}
	if sl != "" {
		out = append(out, sl)
	}
	for _, l := range out {
		b.WriteString(fit(l, v.o.Width))
		b.WriteString("\x1b[K\n")
	}
	v.lines = len(out)
	io.WriteString(w, b.String())
}

// shardLines are the progress bars: shards not done first, as many as fit.
func (v *view) shardLines(s *Snapshot) []string {
	rows := max(1, v.o.Height-6)
	order := make([]int, len(s.Shards))
	for i := range order {
		order[i] = i
	}
	rank := func(st results.ShardStatus) int {
		switch st.State {
		case results.StatePartial:
			return 0
		case results.StatePending:
			return 1
		case results.StateFailed:
			return 2
		}
		return 3
	}
	slices.SortStableFunc(order, func(a, b int) int { return rank(s.Shards[a]) - rank(s.Shards[b]) })
	barW := max(10, min(40, v.o.Width-60))
	var out []string
	for n, i := range order {
		if n == rows && len(order) > rows {
			out = append(out, fmt.Sprintf("… %d more shards", len(order)-rows))
			break
		}
		st := s.Shards[i]
		done := st.OK + st.Failed
		fill := 0
		if st.Inputs > 0 {
			fill = int(float64(barW) * float64(done) / float64(st.Inputs))
		}
		line := fmt.Sprintf("%06d [%s%s] %d/%d", st.Index, strings.Repeat("#", fill), strings.Repeat(".", barW-fill), done, st.Inputs)
		if st.Failed > 0 {
			line += fmt.Sprintf(", %d failed", st.Failed)
		}
		if sl, ok := s.Slurm[st.Index]; ok {
			line += "  " + sl.State
			if sl.Reason != "" {
				line += " (" + sl.Reason + ")"
			}
		}
		out = append(out, line)
	}
	return out
}

func failureLine(s *Snapshot) string {
	if s.Totals.Failed == 0 {
		return ""
	}
	stages := make([]string, 0, len(s.Stages))
	for st := range s.Stages {
		stages = append(stages, st)
	}
	slices.Sort(stages)
	parts := make([]string, len(stages))
	for i, st := range stages {
		parts[i] = fmt.Sprintf("%s %d", st, s.Stages[st])
	}
	return fmt.Sprintf("failures so far: %d (%s)", s.Totals.Failed, strings.Join(parts, ", "))
}

func slurmLine(s *Snapshot) string {
	if s.SlurmErr != nil {
		return "Slurm could not be asked: " + s.SlurmErr.Error()
	}
	if len(s.Slurm) == 0 {
		return ""
	}
	n := map[string]int{}
	for _, st := range s.Slurm {
		n[st.State]++
	}
	var parts []string
	for _, st := range []string{slurm.StateRunning, slurm.StatePending, slurm.StateCompleted, slurm.StateFailed, slurm.StateCancelled, slurm.StateFinished} {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	return "Slurm tasks: " + strings.Join(parts, ", ")
}

// fit cuts a line to width runes, so that a redraw never wraps; control characters
// (from a Slurm reason or a path) are replaced.
func fit(s string, width int) string {
	r := []rune(s)
	for i, c := range r {
		if c < 0x20 || c == 0x7f {
			r[i] = '?'
		}
	}
	if len(r) > width {
		r = append(r[:width-1], '…')
	}
	return string(r)
}

// TerminalSize returns the size of the terminal w writes to, or 0, 0.
func TerminalSize(w io.Writer) (width, height int) {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return 0, 0
	}
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}
