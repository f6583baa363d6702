package report

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// Bounds of what one streaming pass keeps, whatever the number of results.
const (
	maxLabels        = 1000 // distinct labels counted; the rest go to otherLabel
	maxFailureGroups = 200  // distinct (stage, message) groups; the rest go to one group
	maxExamples      = 3    // example paths per failure group
	valueSample      = 10_000
	maxDetectBucket  = 1000 // detections per image counted exactly up to this
	answerClip       = 2000 // bytes of an answer shown beside its thumbnail
	messageClip      = 300  // bytes of a failure message
	rawSamples       = 12   // raw answers shown for ShapeOther
)

const otherLabel = "(other labels)"

// item is one input of the gallery.
type item struct {
	Path   string
	OK     bool
	Stage  string
	Error  string
	Answer string // the model's answer, clipped
	Boxes  []Box
	Count  int // detections (ShapeBoxes)
}

// failureGroup counts failures of one stage and message.
type failureGroup struct {
	Stage, Message string
	Count          int64
	Examples       []string
	Shards         map[int]bool // shards it happened in (for the worker logs)
}

// values is a bounded sample of numbers with their exact count and range.
type values struct {
	n        int64
	min, max float64
	sample   *Reservoir[float64]
}

func newValues(seed uint64) *values {
	return &values{min: math.Inf(1), max: math.Inf(-1), sample: NewReservoir[float64](valueSample, seed)}
}

func (v *values) add(x float64) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return
	}
	v.n++
	v.min, v.max = min(v.min, x), max(v.max, x)
	v.sample.Offer(func() float64 { return x })
}

// analysis is everything one pass over the results keeps: O(samples + groups +
// labels + shards), not O(inputs).
type analysis struct {
	shapes    map[string]int64
	perImage  map[int]int64 // detections per image → images
	boxSizes  *values       // sqrt(w·h) of each box
	numbers   *values
	labels    map[string]int64
	raw       *Reservoir[string]
	failures  map[[2]string]*failureGroup
	sample    *Reservoir[item]
	failed    []item
	maxFailed int
	most      *Extremes[item]
	fewest    *Extremes[item]
}

func newAnalysis(samples, maxFailed int, seed uint64) *analysis {
	count := func(it item) int { return it.Count }
	return &analysis{
		shapes:    map[string]int64{},
		perImage:  map[int]int64{},
		boxSizes:  newValues(seed + 1),
		numbers:   newValues(seed + 2),
		labels:    map[string]int64{},
		raw:       NewReservoir[string](rawSamples, seed+3),
		failures:  map[[2]string]*failureGroup{},
		sample:    NewReservoir[item](samples, seed),
		maxFailed: maxFailed,
		most:      NewExtremes(4, true, count),
		fewest:    NewExtremes(4, false, count),
	}
}

// add takes one input of the job with its final result.
func (a *analysis) add(shard int, e *results.Entry) {
	if !e.Found {
		return
	}
	if !e.OK {
		a.addFailure(shard, e)
		return
	}
	raw, _ := results.RawField(e.Line, "result")
	ans := ParseAnswer(raw)
	a.shapes[ans.Shape]++
	switch ans.Shape {
	case ShapeBoxes:
		a.perImage[min(len(ans.Boxes), maxDetectBucket)]++
		for _, b := range ans.Boxes {
			a.boxSizes.add(math.Sqrt(math.Abs(b.W * b.H)))
		}
	case ShapeLabels:
		l := units.Clip(ans.Label, 200)
		if _, ok := a.labels[l]; ok || len(a.labels) < maxLabels {
			a.labels[strings.Clone(l)]++
		} else {
			a.labels[otherLabel]++
		}
	case ShapeNumber:
		a.numbers.add(ans.Num)
	default:
		a.raw.Offer(func() string { return units.Clip(string(raw), answerClip) })
	}
	mk := func() item {
		return item{Path: strings.Clone(e.Path), OK: true, Answer: units.Clip(string(raw), answerClip), Boxes: ans.Boxes, Count: len(ans.Boxes)}
	}
	a.sample.Offer(mk)
	if ans.Shape == ShapeBoxes {
		n := len(ans.Boxes)
		if n > 0 && a.most.Would(n) {
			a.most.Offer(mk())
		}
		if a.fewest.Would(n) {
			a.fewest.Offer(mk())
		}
	}
}

func (a *analysis) addFailure(shard int, e *results.Entry) {
	var errText string
	if raw, ok := results.RawField(e.Line, "error"); ok {
		_ = json.Unmarshal(raw, &errText)
	}
	msg := units.Clip(errText, messageClip)
	key := [2]string{e.Stage, msg}
	g, ok := a.failures[key]
	if !ok {
		if len(a.failures) >= maxFailureGroups {
			key = [2]string{e.Stage, "(other messages)"}
			g = a.failures[key]
		}
		if g == nil {
			g = &failureGroup{Stage: strings.Clone(e.Stage), Message: strings.Clone(key[1]), Shards: map[int]bool{}}
			a.failures[key] = g
		}
	}
	g.Count++
	if len(g.Examples) < maxExamples {
		g.Examples = append(g.Examples, strings.Clone(e.Path))
	}
	if len(g.Shards) < 8 {
		g.Shards[shard] = true
	}
	if len(a.failed) < a.maxFailed {
		a.failed = append(a.failed, item{Path: strings.Clone(e.Path), Stage: strings.Clone(e.Stage), Error: msg})
	}
}

// shape is the shape most answers have (ShapeOther when there are none).
func (a *analysis) shape() string {
	best, n := ShapeOther, int64(0)
	for _, s := range []string{ShapeBoxes, ShapeLabels, ShapeNumber, ShapeOther} {
		if a.shapes[s] > n {
			best, n = s, a.shapes[s]
		}
	}
	return best
}

// failureGroups are the groups, most frequent first.
func (a *analysis) failureGroups() []*failureGroup {
	gs := make([]*failureGroup, 0, len(a.failures))
	for _, g := range a.failures {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(x, y *failureGroup) int {
		if c := cmp.Compare(y.Count, x.Count); c != 0 {
			return c
		}
		return strings.Compare(x.Stage+x.Message, y.Stage+y.Message)
	})
	return gs
}
