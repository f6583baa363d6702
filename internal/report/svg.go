package report

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// Charts are inline SVG written here. Every text that comes from a model or the data
// goes through esc; numbers are formatted by us.

func esc(s string) string { return html.EscapeString(s) }

// Bar is one bar of a chart: a label and its value.
type Bar struct {
	Label string
	Value float64
}

const (
	chartW  = 640
	barH    = 18
	labelW  = 200
	padding = 6
)

// BarChart draws horizontal bars, one per row, labelled on the left with the value
// on the right. Labels are escaped.
func BarChart(title string, bars []Bar) template.HTML {
	var b strings.Builder
	h := len(bars)*(barH+4) + 28
	maxV := 0.0
	for _, bar := range bars {
		maxV = math.Max(maxV, bar.Value)
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, h, chartW, h, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="14" class="t">%s</text>`, esc(title))
	avail := float64(chartW - labelW - 70)
	for i, bar := range bars {
		y := 24 + i*(barH+4)
		w := 0.0
		if maxV > 0 {
			w = math.Max(1, bar.Value/maxV*avail)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="l" text-anchor="end">%s</text>`, labelW-padding, y+13, esc(units.Clip(bar.Label, 40)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" class="b"><title>%s: %s</title></rect>`, labelW, y, w, barH, esc(bar.Label), fmtNum(bar.Value))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="v">%s</text>`, float64(labelW)+w+4, y+13, fmtNum(bar.Value))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// Histogram draws vertical bars over bins with their lower bounds on the x axis.
func Histogram(title, xLabel string, bins []Bar) template.HTML {
	var b strings.Builder
	const h, plotH, top = 220, 150, 24
	maxV := 0.0
	for _, bin := range bins {
		maxV = math.Max(maxV, bin.Value)
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, h, chartW, h, esc(title))
	fmt.Fprintf(&b, `<text x="0" y="14" class="t">%s</text>`, esc(title))
	n := max(len(bins), 1)
	bw := float64(chartW-60) / float64(n)
	every := max(1, n/10)
	for i, bin := range bins {
		x := 50 + float64(i)*bw
		bh := 0.0
		if maxV > 0 && bin.Value > 0 {
			bh = math.Max(1, bin.Value/maxV*plotH)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="b"><title>%s: %s</title></rect>`,
			x+1, float64(top+plotH)-bh, math.Max(bw-2, 1), bh, esc(bin.Label), fmtNum(bin.Value))
		if i%every == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="l" text-anchor="middle">%s</text>`, x+bw/2, top+plotH+14, esc(bin.Label))
		}
	}
	fmt.Fprintf(&b, `<text x="46" y="%d" class="l" text-anchor="end">%s</text>`, top+8, fmtNum(maxV))
	fmt.Fprintf(&b, `<text x="46" y="%d" class="l" text-anchor="end">0</text>`, top+plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="l" text-anchor="middle">%s</text>`, chartW/2, h-8, esc(xLabel))
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// binValues cuts a sample of values into about n equal bins over [lo, hi] and
// scales the counts by scale (the sampled fraction), so they estimate the totals.
func binValues(sample []float64, lo, hi float64, n int, scale float64) []Bar {
	if len(sample) == 0 {
		return nil
	}
	if hi <= lo {
		return []Bar{{Label: fmtNum(lo), Value: float64(len(sample)) * scale}}
	}
	width := (hi - lo) / float64(n)
	counts := make([]float64, n)
	for _, v := range sample {
		i := int((v - lo) / width)
		counts[min(max(i, 0), n-1)]++
	}
	bars := make([]Bar, n)
	for i := range counts {
		bars[i] = Bar{Label: fmtNum(lo + float64(i)*width), Value: math.Round(counts[i] * scale)}
	}
	return bars
}

// fmtNum prints a number compactly: integers as such, others with 3 significant digits.
func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.3g", v)
}

// Span is one shard on the timeline: from its first to its last answer.
type Span struct {
	Label       string
	Start, End  float64 // seconds from the start of the job
	State       string  // results shard state: done, failed, partial, pending
	Description string
}

// Timeline draws one bar per shard from its first to its last answer, coloured by
// outcome, on a common time axis of total seconds.
func Timeline(spans []Span, total float64) template.HTML {
	var b strings.Builder
	const rowH, top, left = 12, 20, 70
	h := top + len(spans)*rowH + 24
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="shards over time">`, chartW, h, chartW, h)
	plotW := float64(chartW - left - 10)
	if total <= 0 {
		total = 1
	}
	for i, s := range spans {
		y := top + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="l" text-anchor="end">%s</text>`, left-4, y+9, esc(s.Label))
		if s.State == "pending" && s.End <= s.Start {
			continue
		}
		x := float64(left) + s.Start/total*plotW
		w := math.Max(2, (s.End-s.Start)/total*plotW)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" class="s-%s"><title>%s</title></rect>`,
			x, y, w, rowH-2, esc(s.State), esc(s.Description))
	}
	axisY := top + len(spans)*rowH + 14
	for i := 0; i <= 4; i++ {
		x := float64(left) + float64(i)/4*plotW
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="l" text-anchor="middle">%s</text>`, x, axisY, fmtDuration(total*float64(i)/4))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// fmtDuration prints seconds as "1h02m", "3m05s" or "4.2s".
func fmtDuration(s float64) string {
	switch {
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm", int(s)/3600, int(s)%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
	}
	return fmt.Sprintf("%.1fs", s)
}
