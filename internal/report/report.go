// Package report writes the HTML report of a job directory: one self-contained
// page (no script, no fetch: a Content-Security-Policy forbids both) with the job's
// summary, its failures grouped by stage and message, what the model answered as
// inline SVG charts, a gallery of thumbnails with the model's boxes drawn on them,
// and a timeline of the shards. It reads the results in one streaming pass
// (results.Walk) and keeps bounded samples, so a million results fit in memory.
// Everything that comes from a model or the data is escaped.
package report

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/fsutil"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// Defaults of Options.
const (
	DefaultSamples   = 24
	DefaultMaxFailed = 48
	maxTimeline      = 2000 // shards drawn on the timeline
	maxShardRows     = 200  // shards listed in the per-shard table
)

// Options tune Write. The zero value uses the defaults.
type Options struct {
	// Samples is how many inputs the gallery shows, chosen reproducibly (a fixed
	// seed from the job's digest) among the answered ones (default DefaultSamples;
	// negative: none).
	Samples int
	// MaxFailed caps the failed inputs shown in the gallery (default
	// DefaultMaxFailed; negative: none).
	MaxFailed int
	// Now is the time pending shards are measured to (default time.Now).
	Now time.Time
	// Title overrides the page title (default "scv-hpc report: MODEL").
	Title string
}

// Stats are figures of the report Write made, for the caller to print.
type Stats struct {
	Totals     results.Totals
	Shown      int // thumbnails drawn
	NotShown   int // inputs that could not be shown
	Shape      string
	WallTime   time.Duration
	Throughput float64 // answers per second over the wall time
	Where      string  // where WriteTo wrote: "stdout", or the file
}

// WriteTo writes the report of the job in jobDir (Write) to out: a file, replaced
// atomically, or stdout for "-". out is refused before anything is read when it is
// one of the job's own files (job.ErrOwnFile, see job.Dir.CheckOutput): a report
// written over job.json would lose the job.
func WriteTo(ctx context.Context, jobDir, out string, stdout io.Writer, o Options) (Stats, error) {
	var st Stats
	if out != "-" {
		if err := job.Dir(jobDir).CheckOutput(out); err != nil {
			return st, fmt.Errorf("report -o %s: %w", out, err)
		}
	}
	where, err := fsutil.WriteOutput(out, stdout, func(w io.Writer) error {
		var err error
		st, err = Write(ctx, jobDir, w, o)
		return err
	})
	st.Where = where
	return st, err
}

// Write reads the job directory and writes its report to w.
func Write(ctx context.Context, jobDir string, w io.Writer, o Options) (Stats, error) {
	o = o.withDefaults()
	j, err := job.Load(jobDir)
	if err != nil {
		return Stats{}, fmt.Errorf("report: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte(j.Digest + j.Model))
	a := newAnalysis(max(o.Samples, 0), max(o.MaxFailed, 0), h.Sum64())
	var shards []results.ShardStatus
	var times [][2]int64
	var tot results.Totals
	err = results.Walk(ctx, jobDir, j.Shards, results.WalkOptions{}, func(s *results.Shard) error {
		for k := range s.Entries {
			a.add(s.Index, &s.Entries[k])
		}
		shards = append(shards, s.Status)
		times = append(times, [2]int64{s.First, s.Last})
		st := s.Status
		tot.Inputs += st.Inputs
		tot.OK += st.OK
		tot.Failed += st.Failed
		tot.Pending += st.Pending
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("report %s: %w", jobDir, err)
	}
	p := build(ctx, jobDir, j, a, shards, times, tot, o)
	if err := page.Execute(w, p); err != nil {
		return Stats{}, fmt.Errorf("report %s: write: %w", jobDir, err)
	}
	return Stats{Totals: tot, Shown: p.shown, NotShown: len(p.NotShown), Shape: a.shape(),
		WallTime: time.Duration(p.wall * float64(time.Second)), Throughput: p.throughput}, nil
}

func (o Options) withDefaults() Options {
	if o.Samples == 0 {
		o.Samples = DefaultSamples
	}
	if o.MaxFailed == 0 {
		o.MaxFailed = DefaultMaxFailed
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	return o
}

// kv is one row of the summary table.
type kv struct {
	Key, Value string
}

// figure is one gallery entry as the page shows it.
type figure struct {
	Path    string
	Boxes   []Box // in thumbnail pixels
	Thumb   template.URL
	W, H    int
	Scale   string
	Caption string
	Answer  string
	Failed  bool
	Error   string
}

type section struct {
	Title   string
	Note    string
	Figures []figure
}

type failureView struct {
	Stage, Message string
	Count          int64
	Examples       []string
	Logs           []logTail
}

type shardRow struct {
	Index                   string
	State                   string
	Inputs, OK, Failed, Pnd int64
	Elapsed                 string
	Nodes                   string
}

// pageData is what the template renders; every string in it is escaped by
// html/template, and the SVG fields are built by this package with esc.
type pageData struct {
	Title     string
	CSP       string
	BoxColor  string
	Generated string
	Summary   []kv
	Totals    results.Totals
	Failures  []failureView
	Shape     string
	Charts    []template.HTML
	Raw       []string
	Sections  []section
	NotShown  []kv
	Timeline  template.HTML
	Shards    []shardRow
	MoreRows  int

	shown      int
	wall       float64
	throughput float64
}

// CSP is the page's Content-Security-Policy: nothing may be fetched or run; images
// only from data: URIs, styles only inline.
const CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

func build(ctx context.Context, jobDir string, j *job.Job, a *analysis, shards []results.ShardStatus, times [][2]int64, tot results.Totals, o Options) *pageData {
	p := &pageData{Title: o.Title, CSP: CSP, BoxColor: BoxColor, Totals: tot, Shape: a.shape(), Generated: o.Now.UTC().Format(time.RFC3339)}
	if p.Title == "" {
		p.Title = "scv-hpc report: " + j.Model
	}
	// Times: the job runs from its first answer to its last.
	var first, last int64
	for _, t := range times {
		if t[0] > 0 && (first == 0 || t[0] < first) {
			first = t[0]
		}
		last = max(last, t[1])
	}
	if last > first {
		p.wall = float64(last-first) / 1000
		p.throughput = float64(tot.OK+tot.Failed) / p.wall
	}
	nodes := shardNodes(jobDir)
	p.Summary = summary(j, tot, p, nodes)
	p.Failures = failures(jobDir, a)
	p.Charts, p.Raw = charts(a)
	p.Sections, p.NotShown = gallery(ctx, j.DataRoot, a, p)
	p.Timeline = timeline(shards, times, first, last)
	for i, st := range shards {
		if i == maxShardRows {
			p.MoreRows = len(shards) - i
			break
		}
		row := shardRow{Index: fmt.Sprintf("%06d", st.Index), State: st.State, Inputs: st.Inputs, OK: st.OK, Failed: st.Failed, Pnd: st.Pending}
		if t := times[i]; t[1] > t[0] && t[0] > 0 {
			row.Elapsed = fmtDuration(float64(t[1]-t[0]) / 1000)
		}
		row.Nodes = strings.Join(nodes[st.Index], ", ")
		p.Shards = append(p.Shards, row)
	}
	return p
}

func summary(j *job.Job, tot results.Totals, p *pageData, nodes map[int][]string) []kv {
	rows := []kv{
		{"Model", j.Model},
		{"Image", j.Ref},
		{"Digest", j.Digest},
		{"Predict command", slurm.QuoteArgs(j.Predict)},
		{"Runtime", orDash(j.Run.Runtime)},
		{"GPUs", orDash(j.Run.GPUs)},
		{"Data", j.DataRoot},
		{"Inputs", fmt.Sprintf("%d (%d ok, %d failed, %d pending)", tot.Inputs, tot.OK, tot.Failed, tot.Pending)},
		{"Shards", strconv.Itoa(j.Shards)},
		{"Created", j.Created.UTC().Format(time.RFC3339)},
	}
	if j.Skipped > 0 {
		rows = append(rows, kv{"Left out by the scan", fmt.Sprintf("%d file(s): unreadable, broken or outside links", j.Skipped)})
	}
	if p.wall > 0 {
		rows = append(rows, kv{"Wall time", fmtDuration(p.wall) + " (first to last answer)"},
			kv{"Throughput", fmt.Sprintf("%.1f inputs/s", p.throughput)})
	}
	if j.Slurm != nil && len(j.Slurm.Arrays) > 0 {
		var ids []string
		for _, arr := range j.Slurm.Arrays {
			ids = append(ids, fmt.Sprintf("%s (%d tasks)", arr.JobID, len(arr.Shards)))
		}
		rows = append(rows, kv{"Slurm arrays", strings.Join(ids, ", ")})
	}
	seen := map[string]bool{}
	var all []string
	for _, ns := range nodes {
		for _, n := range ns {
			if !seen[n] {
				seen[n] = true
				all = append(all, n)
			}
		}
	}
	if len(all) > 0 {
		slices.Sort(all)
		if len(all) > 50 {
			all = append(all[:50], fmt.Sprintf("… %d more", len(all)-50))
		}
		rows = append(rows, kv{"Nodes", strings.Join(all, ", ")})
	}
	return rows
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func failures(jobDir string, a *analysis) []failureView {
	var out []failureView
	for _, g := range a.failureGroups() {
		v := failureView{Stage: g.Stage, Message: g.Message, Count: g.Count, Examples: g.Examples}
		if g.Stage == results.StageLoad || g.Stage == results.StageCrash {
			shards := make([]int, 0, len(g.Shards))
			for s := range g.Shards {
				shards = append(shards, s)
			}
			slices.Sort(shards)
			for _, s := range shards {
				if len(v.Logs) >= maxTailLogs {
					break
				}
				v.Logs = append(v.Logs, workerTails(jobDir, s)...)
			}
			if len(v.Logs) > maxTailLogs {
				v.Logs = v.Logs[:maxTailLogs]
			}
		}
		out = append(out, v)
	}
	return out
}

func charts(a *analysis) ([]template.HTML, []string) {
	var out []template.HTML
	switch a.shape() {
	case ShapeBoxes:
		keys := make([]int, 0, len(a.perImage))
		for k := range a.perImage {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var bins []Bar
		if len(keys) > 0 {
			hi := keys[len(keys)-1]
			if hi <= 40 {
				for n := 0; n <= hi; n++ {
					bins = append(bins, Bar{Label: strconv.Itoa(n), Value: float64(a.perImage[n])})
				}
			} else {
				var sample []float64
				for _, k := range keys {
					for i := int64(0); i < min(a.perImage[k], 1000); i++ {
						sample = append(sample, float64(k))
					}
				}
				bins = binValues(sample, 0, float64(hi), 20, 1)
			}
		}
		out = append(out, Histogram("Detections per image", "detections", bins))
		if a.boxSizes.n > 0 {
			scale := float64(a.boxSizes.n) / float64(len(a.boxSizes.sample.Items))
			out = append(out, Histogram("Box sizes", "√(width × height), pixels",
				binValues(a.boxSizes.sample.Items, a.boxSizes.min, a.boxSizes.max, 20, scale)))
		}
	case ShapeLabels:
		bars := make([]Bar, 0, len(a.labels))
		for l, n := range a.labels {
			bars = append(bars, Bar{Label: l, Value: float64(n)})
		}
		slices.SortFunc(bars, func(x, y Bar) int {
			if c := cmp.Compare(y.Value, x.Value); c != 0 {
				return c
			}
			return strings.Compare(x.Label, y.Label)
		})
		if len(bars) > 30 {
			rest := 0.0
			for _, b := range bars[30:] {
				rest += b.Value
			}
			bars = append(bars[:30], Bar{Label: fmt.Sprintf("%d more labels", len(bars)-30), Value: rest})
		}
		out = append(out, BarChart("Answers per label", bars))
	case ShapeNumber:
		if a.numbers.n > 0 {
			scale := float64(a.numbers.n) / float64(len(a.numbers.sample.Items))
			out = append(out, Histogram("Answers", "value", binValues(a.numbers.sample.Items, a.numbers.min, a.numbers.max, 20, scale)))
		}
	}
	var raw []string
	if a.shape() == ShapeOther {
		raw = a.raw.Items
	}
	return out, raw
}

func gallery(ctx context.Context, root string, a *analysis, p *pageData) ([]section, []kv) {
	thumbs := map[string]figure{}
	var notShown []kv
	noted := map[string]bool{}
	fig := func(it item) (figure, bool) {
		if f, ok := thumbs[it.Path]; ok {
			return f, true
		}
		f := figure{Path: it.Path, Answer: it.Answer, Failed: !it.OK, Error: it.Error}
		switch {
		case it.OK && a.shape() == ShapeBoxes:
			f.Caption = fmt.Sprintf("%d detection(s)", it.Count)
		case !it.OK:
			f.Caption = "failed (" + it.Stage + ")"
		}
		if ctx.Err() != nil {
			return f, false
		}
		t, err := MakeThumbnail(root, it.Path)
		if err != nil {
			if !noted[it.Path] {
				noted[it.Path] = true
				notShown = append(notShown, kv{it.Path, strings.TrimPrefix(err.Error(), ErrNotShown.Error()+" "+it.Path+": ")})
			}
			return f, false
		}
		f.Thumb, f.W, f.H, f.Scale = template.URL(t.DataURI), t.Width, t.Height, strconv.FormatFloat(t.Scale, 'g', 6, 64)
		for _, b := range it.Boxes {
			f.Boxes = append(f.Boxes, Box{X: b.X * t.Scale, Y: b.Y * t.Scale, W: b.W * t.Scale, H: b.H * t.Scale})
		}
		thumbs[it.Path] = f
		p.shown++
		return f, true
	}
	var out []section
	add := func(title, note string, items []item) {
		if len(items) == 0 {
			return
		}
		s := section{Title: title, Note: note}
		for _, it := range items {
			f, _ := fig(it)
			s.Figures = append(s.Figures, f)
		}
		out = append(out, s)
	}
	sample := slices.Clone(a.sample.Items)
	slices.SortFunc(sample, func(x, y item) int { return strings.Compare(x.Path, y.Path) })
	add("Sample", fmt.Sprintf("%d of %d answered inputs, chosen at random (the same ones each time)", len(sample), a.sample.Seen()), sample)
	if a.shape() == ShapeBoxes {
		add("Most detections", "", a.most.Items)
		add("Fewest detections", "", a.fewest.Items)
	}
	note := ""
	if n := failedTotal(a); n > int64(len(a.failed)) {
		note = fmt.Sprintf("the first %d of %d failed inputs", len(a.failed), n)
	}
	add("Failed inputs", note, a.failed)
	return out, notShown
}

func failedTotal(a *analysis) int64 {
	var n int64
	for _, g := range a.failures {
		n += g.Count
	}
	return n
}

func timeline(shards []results.ShardStatus, times [][2]int64, first, last int64) template.HTML {
	if first == 0 || len(shards) == 0 {
		return ""
	}
	total := float64(last-first) / 1000
	var spans []Span
	for i, st := range shards {
		if i == maxTimeline {
			break
		}
		t := times[i]
		sp := Span{Label: fmt.Sprintf("%06d", st.Index), State: st.State}
		if t[0] > 0 {
			sp.Start, sp.End = float64(t[0]-first)/1000, float64(t[1]-first)/1000
			sp.Description = fmt.Sprintf("shard %06d: %s, %d inputs (%d ok, %d failed, %d pending), %s from %s to %s",
				st.Index, st.State, st.Inputs, st.OK, st.Failed, st.Pending, fmtDuration(sp.End-sp.Start), fmtDuration(sp.Start), fmtDuration(sp.End))
		}
		spans = append(spans, sp)
	}
	return Timeline(spans, total)
}
