package report

import (
	"encoding/json"
	"math"
	"slices"
)

// Shapes of a model's answers, as the report recognises them.
const (
	ShapeBoxes  = "boxes"  // a list of boxes: x,y,width,height (or w,h) or x,y,size
	ShapeLabels = "labels" // a string, or an object with a "label" or "class" string
	ShapeNumber = "number" // a number
	ShapeOther  = "other"  // anything else: shown as a sample of raw answers
)

// Box is one detection in image pixels: top-left corner, width and height.
type Box struct {
	X, Y, W, H float64
}

// boxListKeys are the fields searched first for a list of boxes, in this order;
// then every other field in sorted order.
var boxListKeys = []string{"boxes", "detections", "faces", "objects", "predictions", "instances"}

// Answer is what the report reads from one answer.
type Answer struct {
	Shape string
	Boxes []Box // ShapeBoxes (possibly empty: no detection)
	Label string
	Num   float64
}

// maxBoxes bounds the boxes kept for one answer (a hostile model may send millions).
const maxBoxes = 1000

// ParseAnswer classifies a model's answer (the "result" of a result line) by its
// shape. Unknown or malformed answers are ShapeOther, never an error.
func ParseAnswer(raw []byte) Answer {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return Answer{Shape: ShapeOther}
	}
	switch x := v.(type) {
	case string:
		return Answer{Shape: ShapeLabels, Label: x}
	case float64:
		return Answer{Shape: ShapeNumber, Num: x}
	case []any:
		if boxes, ok := boxList(x); ok && len(x) > 0 {
			return Answer{Shape: ShapeBoxes, Boxes: boxes}
		}
	case map[string]any:
		for _, k := range boxListKeys {
			if l, ok := x[k].([]any); ok {
				if boxes, ok := boxList(l); ok {
					return Answer{Shape: ShapeBoxes, Boxes: boxes}
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if l, ok := x[k].([]any); ok && len(l) > 0 {
				if boxes, ok := boxList(l); ok {
					return Answer{Shape: ShapeBoxes, Boxes: boxes}
				}
			}
		}
		for _, k := range []string{"label", "class", "prediction"} {
			if s, ok := x[k].(string); ok {
				return Answer{Shape: ShapeLabels, Label: s}
			}
		}
	}
	return Answer{Shape: ShapeOther}
}

// boxList reads l as a list of boxes; false when an element is not a box.
func boxList(l []any) ([]Box, bool) {
	boxes := make([]Box, 0, min(len(l), maxBoxes))
	for _, e := range l {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		b, ok := boxOf(m)
		if !ok {
			return nil, false
		}
		if len(boxes) < maxBoxes {
			boxes = append(boxes, b)
		}
	}
	return boxes, true
}

func boxOf(m map[string]any) (Box, bool) {
	num := func(keys ...string) (float64, bool) {
		for _, k := range keys {
			if f, ok := m[k].(float64); ok && !math.IsInf(f, 0) && !math.IsNaN(f) {
				return f, true
			}
		}
		return 0, false
	}
	x, okx := num("x", "left")
	y, oky := num("y", "top")
	if !okx || !oky {
		return Box{}, false
	}
	if w, ok := num("width", "w"); ok {
		if h, ok := num("height", "h"); ok {
			return Box{x, y, w, h}, true
		}
	}
	if s, ok := num("size"); ok {
		return Box{x, y, s, s}, true
	}
	return Box{}, false
}
