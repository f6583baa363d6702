package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"os"
	"sort"

	// Image formats the model reads, registered with image.Decode.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	pigo "github.com/esimov/pigo/core"
)

// Detection parameters, as in pigo's own examples (examples/facedet, cmd/pigo).
const (
	minFaceSize = 20
	maxFaceSize = 1000
	shiftFactor = 0.1
	scaleFactor = 1.1
	iouThresh   = 0.2
	// minScore drops weak cluster scores; pigo's examples draw only detections with Q > 5.
	minScore = 5.0
	// maxPixels bounds the decoded image size so that a hostile header cannot make the
	// model allocate gigabytes (a 100-megapixel photo still fits).
	maxPixels = 100_000_000
)

// errCascade is returned when the cascade file is not a pigo cascade.
var errCascade = errors.New("not a pigo cascade file")

// Face is one detected face: a square box whose top-left corner is (X, Y) and whose
// side is Size pixels, with the detector's score (higher is surer).
type Face struct {
	X     int     `json:"x"`
	Y     int     `json:"y"`
	Size  int     `json:"size"`
	Score float32 `json:"score"`
}

// Result is what the model answers for one image.
type Result struct {
	Width  int    `json:"width"`
	Height int    `json:"height"`
	Faces  []Face `json:"faces"`
	Count  int    `json:"count"`
}

// Detector finds faces with a pigo cascade. It is safe for concurrent use: the
// cascade is only read while detecting.
type Detector struct {
	classifier *pigo.Pigo
}

// LoadDetector reads and unpacks the pigo cascade at path.
func LoadDetector(path string) (*Detector, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load cascade: %w", err)
	}
	d, err := NewDetector(data)
	if err != nil {
		return nil, fmt.Errorf("load cascade %s: %w", path, err)
	}
	return d, nil
}

// NewDetector unpacks a pigo cascade held in memory. A truncated or foreign file is an
// error, never a panic.
func NewDetector(data []byte) (d *Detector, err error) {
	if len(data) < 16 {
		return nil, fmt.Errorf("%w (%d bytes)", errCascade, len(data))
	}
	defer func() {
		// pigo's Unpack indexes the packet without bounds checks.
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("%w (truncated or corrupt: %v)", errCascade, r)
		}
	}()
	c, err := pigo.NewPigo().Unpack(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCascade, err)
	}
	return &Detector{classifier: c}, nil
}

// DetectFile decodes the image file at path and finds the faces in it.
func (d *Detector) DetectFile(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *PathError names the path: "open /data/x.png: no such file or directory"
	}
	defer f.Close()
	img, err := decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return d.Detect(img), nil
}

// decode reads an image after checking that its declared size is reasonable.
func decode(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	// image.DecodeConfig consumes input: peek enough for the header of every format.
	head, _ := br.Peek(64 << 10)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(head))
	if err == nil && int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("image is %dx%d, more than %d pixels", cfg.Width, cfg.Height, maxPixels)
	}
	img, _, err := image.Decode(br)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// Detect finds the faces in img.
func (d *Detector) Detect(img image.Image) *Result {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	res := &Result{Width: w, Height: h, Faces: []Face{}}
	if w == 0 || h == 0 {
		return res
	}
	if b.Min != (image.Point{}) {
		// pigo reads pixels from (0,0): move a sub-image there (RGBA64 keeps every value).
		at0 := image.NewRGBA64(image.Rect(0, 0, w, h))
		draw.Draw(at0, at0.Bounds(), img, b.Min, draw.Src)
		img = at0
	}
	params := pigo.CascadeParams{
		MinSize:     minFaceSize,
		MaxSize:     maxFaceSize,
		ShiftFactor: shiftFactor,
		ScaleFactor: scaleFactor,
		ImageParams: pigo.ImageParams{Pixels: pigo.RgbToGrayscale(img), Rows: h, Cols: w, Dim: w},
	}
	dets := d.classifier.RunCascade(params, 0)
	dets = d.classifier.ClusterDetections(dets, iouThresh)
	for _, det := range dets {
		if det.Q <= minScore {
			continue
		}
		res.Faces = append(res.Faces, Face{X: det.Col - det.Scale/2, Y: det.Row - det.Scale/2, Size: det.Scale, Score: det.Q})
	}
	sort.Slice(res.Faces, func(i, j int) bool {
		a, b := res.Faces[i], res.Faces[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.Y != b.Y {
			return a.Y < b.Y
		}
		return a.X < b.X
	})
	res.Count = len(res.Faces)
	return res
}
