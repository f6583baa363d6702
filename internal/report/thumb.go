package report

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"

	// Decoders of the image types the scan includes by default.
	_ "image/gif"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	"golang.org/x/image/draw"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// Limits on an input the report decodes: the data is untrusted, and a small file can
// claim a huge image.
const (
	// MaxThumbFileBytes is the largest file the report opens for a thumbnail.
	MaxThumbFileBytes = 256 << 20
	// MaxThumbPixels is the largest image (width × height) it decodes.
	MaxThumbPixels = 100_000_000
	// ThumbSize is the longest side of a thumbnail, in pixels.
	ThumbSize = 200
)

// BoxColor is the colour the page draws boxes in (magenta: rare in photos).
const BoxColor = "#ff00ff"

// ErrNotShown is wrapped by Thumbnail for an input it cannot show.
var ErrNotShown = errors.New("cannot show input")

// Thumbnail is a downscaled copy of one input with its boxes drawn on it.
type Thumbnail struct {
	DataURI       string  // data:image/jpeg;base64,…
	Width, Height int     // of the thumbnail
	Scale         float64 // thumbnail pixels per image pixel
}

// MakeThumbnail opens rel under root (it must stay inside root, symlinks included),
// decodes it within the limits above, scales it so its longest side is at most
// ThumbSize and encodes it as a JPEG data URI. The page draws the boxes on top as
// SVG (see BoxColor), crisp whatever the JPEG does to thin lines. Errors wrap
// ErrNotShown and say why.
func MakeThumbnail(root, rel string) (Thumbnail, error) {
	img, err := decodeInside(root, rel)
	if err != nil {
		return Thumbnail{}, fmt.Errorf("%w %s: %v", ErrNotShown, rel, err)
	}
	b := img.Bounds()
	scale := min(1, float64(ThumbSize)/float64(max(b.Dx(), b.Dy())))
	tw, th := max(1, int(float64(b.Dx())*scale+0.5)), max(1, int(float64(b.Dy())*scale+0.5))
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85}); err != nil {
		return Thumbnail{}, fmt.Errorf("%w %s: encode: %v", ErrNotShown, rel, err)
	}
	return Thumbnail{
		DataURI: "data:image/jpeg;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()),
		Width:   tw, Height: th, Scale: scale,
	}, nil
}

// decodeInside opens root/rel without leaving root and decodes it.
func decodeInside(root, rel string) (image.Image, error) {
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return nil, errors.New("path is not inside the data root")
	}
	rootReal, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("data root: %w", err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(rootReal, filepath.FromSlash(rel)))
	if err != nil {
		return nil, errors.New("file is missing or unreadable")
	}
	if !strings.HasPrefix(real, rootReal+string(filepath.Separator)) {
		return nil, errors.New("path leads outside the data root")
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, errors.New("cannot open the file")
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if fi.Size() > MaxThumbFileBytes {
		return nil, fmt.Errorf("file larger than %d MiB", MaxThumbFileBytes>>20)
	}
	cfg, format, err := image.DecodeConfig(io.LimitReader(f, MaxThumbFileBytes))
	if err != nil {
		return nil, errors.New("not an image the report can decode (png, jpeg, gif, bmp, tiff, webp)")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxThumbPixels {
		return nil, fmt.Errorf("%s of %d×%d pixels is too large to show", format, cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(io.LimitReader(f, MaxThumbFileBytes))
	if err != nil {
		return nil, fmt.Errorf("%s does not decode: %v", format, err)
	}
	return img, nil
}
