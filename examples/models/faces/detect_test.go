package main

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

func loadDetector(t testing.TB) *Detector {
	t.Helper()
	d, err := LoadDetector(testenv.FacesCascade(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDetectSamples checks the detector on the real sample photographs.
func TestDetectSamples(t *testing.T) {
	d := loadDetector(t)
	dir := testenv.SampleImages(t)
	tests := []struct {
		name          string
		width, height int
		faces         int
	}{
		{"astronaut.png", 512, 512, 1},
		{"messi5.jpg", 548, 342, 1},
		{"coins.png", 384, 303, 0},
		{"chelsea.png", 451, 300, 0},
		{"coffee.png", 600, 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := d.DetectFile(filepath.Join(dir, tt.name))
			if err != nil {
				t.Fatal(err)
			}
			if res.Width != tt.width || res.Height != tt.height {
				t.Errorf("size %dx%d, want %dx%d", res.Width, res.Height, tt.width, tt.height)
			}
			if res.Count != tt.faces || len(res.Faces) != tt.faces {
				t.Errorf("found %d faces (%+v), want %d", res.Count, res.Faces, tt.faces)
			}
			for _, f := range res.Faces {
				if f.X < 0 || f.Y < 0 || f.X+f.Size > res.Width || f.Y+f.Size > res.Height || f.Score <= minScore {
					t.Errorf("face %+v outside the %dx%d image or below the score threshold", f, res.Width, res.Height)
				}
			}
		})
	}
}

// TestDetectFollowsTheFace pastes the astronaut's face into a plain canvas at several
// places: the detected box must move with it.
func TestDetectFollowsTheFace(t *testing.T) {
	d := loadDetector(t)
	src := decodeFile(t, filepath.Join(testenv.SampleImages(t), "astronaut.png"))
	ref := d.Detect(src)
	if ref.Count != 1 {
		t.Fatalf("astronaut.png: %d faces, want 1", ref.Count)
	}
	face := ref.Faces[0]
	// Crop generously around the face so the detector sees the same pixels.
	margin := face.Size / 2
	crop := image.Rect(face.X-margin, face.Y-margin, face.X+face.Size+margin, face.Y+face.Size+margin).Intersect(src.Bounds())
	for _, at := range []image.Point{{0, 0}, {300, 40}, {37, 411}} {
		canvas := image.NewRGBA(image.Rect(0, 0, 640, 640))
		draw.Draw(canvas, canvas.Bounds(), image.NewUniform(color.Gray{Y: 128}), image.Point{}, draw.Src)
		draw.Draw(canvas, image.Rectangle{Min: at, Max: at.Add(crop.Size())}, src, crop.Min, draw.Src)
		res := d.Detect(canvas)
		if res.Count != 1 {
			t.Fatalf("face pasted at %v: %d faces (%+v), want 1", at, res.Count, res.Faces)
		}
		wantX, wantY := face.X-crop.Min.X+at.X, face.Y-crop.Min.Y+at.Y
		got := res.Faces[0]
		if abs(got.X-wantX) > face.Size/8 || abs(got.Y-wantY) > face.Size/8 || abs(got.Size-face.Size) > face.Size/8 {
			t.Errorf("face pasted at %v: box %+v, want about x=%d y=%d size=%d", at, got, wantX, wantY, face.Size)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func decodeFile(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestDecodeFormats writes one generated image in every format the model claims to
// read and checks each decodes to the right size.
func TestDecodeFormats(t *testing.T) {
	d := loadDetector(t)
	img := image.NewNRGBA(image.Rect(0, 0, 97, 61))
	for y := 0; y < 61; y++ {
		for x := 0; x < 97; x++ {
			img.Set(x, y, color.NRGBA{uint8(x * 2), uint8(y * 4), uint8(x + y), 255})
		}
	}
	encoders := []struct {
		ext    string
		encode func(*bytes.Buffer) error
	}{
		{"png", func(b *bytes.Buffer) error { return png.Encode(b, img) }},
		{"jpg", func(b *bytes.Buffer) error { return jpeg.Encode(b, img, nil) }},
		{"gif", func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) }},
		{"bmp", func(b *bytes.Buffer) error { return bmp.Encode(b, img) }},
		{"tiff", func(b *bytes.Buffer) error { return tiff.Encode(b, img, nil) }},
	}
	dir := t.TempDir()
	for _, e := range encoders {
		t.Run(e.ext, func(t *testing.T) {
			var b bytes.Buffer
			if err := e.encode(&b); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "img."+e.ext)
			if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := d.DetectFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if res.Width != 97 || res.Height != 61 || res.Count != 0 || res.Faces == nil {
				t.Errorf("got %+v, want 97x61 with an empty face list", res)
			}
		})
	}
	t.Run("webp", func(t *testing.T) {
		// No WebP encoder in Go: use the sample that golang.org/x/image's tests decode.
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/image").Output()
		if err != nil {
			t.Fatalf("locate golang.org/x/image: %v", err)
		}
		p := filepath.Join(strings.TrimSpace(string(out)), "testdata", "blue-purple-pink.lossless.webp")
		res, err := d.DetectFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Width == 0 || res.Height == 0 {
			t.Errorf("webp decoded to %dx%d", res.Width, res.Height)
		}
	})
}

func TestDetectFileErrors(t *testing.T) {
	d := loadDetector(t)
	dir := t.TempDir()
	var pngBytes bytes.Buffer
	_ = png.Encode(&pngBytes, image.NewGray(image.Rect(0, 0, 50, 50)))
	files := map[string][]byte{
		"garbage.png":   []byte("this is not an image"),
		"truncated.png": pngBytes.Bytes()[:pngBytes.Len()/2],
		"empty.jpg":     nil,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ name, want string }{
		{"garbage.png", "decode " + filepath.Join(dir, "garbage.png") + ": "},
		{"truncated.png", "decode " + filepath.Join(dir, "truncated.png") + ": "},
		{"empty.jpg", "decode " + filepath.Join(dir, "empty.jpg") + ": "},
		{"missing.png", "open " + filepath.Join(dir, "missing.png") + ": no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.DetectFile(filepath.Join(dir, tt.name))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestLoadDetectorErrors(t *testing.T) {
	good, err := os.ReadFile(testenv.FacesCascade(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := map[string][]byte{
		"empty":     {},
		"tiny":      []byte("pigo"),
		"truncated": good[:len(good)/3],
		"header":    good[:20],
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadDetector(p)
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Fatalf("LoadDetector(%s) = %v, want an error naming the file", name, err)
			}
		})
	}
	if _, err := LoadDetector(filepath.Join(dir, "absent")); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing cascade: %v, want a not-exist error", err)
	}
}

func BenchmarkDetect(b *testing.B) {
	d := loadDetector(b)
	img := decodeFile(b, filepath.Join(testenv.SampleImages(b), "astronaut.png"))
	b.ResetTimer()
	for b.Loop() {
		if r := d.Detect(img); r.Count != 1 {
			b.Fatalf("%d faces", r.Count)
		}
	}
}
