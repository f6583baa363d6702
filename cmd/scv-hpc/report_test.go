package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// facesRun runs the demo model with the builtin runtime over the sample images plus
// a file whose name is markup and one that is not an image, and returns the job
// directory and the data directory.
func facesRun(t *testing.T) (out, data string) {
	t.Helper()
	testenv.Need(t, "mksquashfs", "unsquashfs")
	lay := facesLayout(t)
	data = filepath.Join(t.TempDir(), "data")
	os.MkdirAll(data, 0o755)
	samples := testenv.SampleImages(t)
	for _, n := range testenv.SampleNames {
		b, err := os.ReadFile(filepath.Join(samples, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(data, n), b, 0o644)
		if n == "coins.png" {
			os.WriteFile(filepath.Join(data, "<script>alert(1)<b>.png"), b, 0o644)
		}
	}
	os.WriteFile(filepath.Join(data, "broken.png"), []byte("not an image"), 0o644)
	out = filepath.Join(t.TempDir(), "run")
	env := []string{"TMPDIR=" + t.TempDir()}
	code, stdout, stderr := scv(t, env, "--cache", filepath.Join(t.TempDir(), "cache"), "predict", "oci-layout:"+lay+":faces",
		"--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none", "--shard-size", "3")
	if code != 3 {
		t.Fatalf("predict exit %d (want 3: broken.png fails)\n%s\n%s", code, stdout, stderr)
	}
	return out, data
}

// TestReportInBrowser: the report of a real run of the demo model opens in headless
// Chromium with no console error and no network request, the astronaut's face box
// is drawn over its thumbnail, and markup in a file name stays text.
func TestReportInBrowser(t *testing.T) {
	chromiumPath(t)
	out, _ := facesRun(t)
	html := filepath.Join(out, "report.html")
	code, stdout, stderr := scv(t, nil, "report", out, "-o", html)
	if code != 0 {
		t.Fatalf("report exit %d\n%s\n%s", code, stdout, stderr)
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(bytes.ToLower(page), []byte("<script")) {
		t.Fatalf("the page holds a <script element")
	}
	if !bytes.Contains(page, []byte("&lt;script&gt;alert(1)&lt;b&gt;.png")) {
		t.Errorf("the markup file name is not shown as text")
	}

	b := startBrowser(t, 1280, 1600)
	problems := b.load(t, "file://"+html)
	if len(problems) > 0 {
		t.Errorf("loading the report: %s", strings.Join(problems, "\n"))
	}

	// The check itself must catch a fetch: the same page with a remote image fails it.
	bad := filepath.Join(t.TempDir(), "tampered.html")
	os.WriteFile(bad, bytes.Replace(page, []byte("<body>"), []byte(`<body><img src="http://127.0.0.1:9/x.png">`), 1), 0o644)
	if p := b.load(t, "file://"+bad); len(p) == 0 {
		t.Errorf("a page with a remote image passed the network check")
	}
	b.load(t, "file://"+html)

	// The astronaut's thumbnail, its box (thumbnail pixels) and the image without it.
	var fig struct {
		X, Y, W, H float64
		Src        string
		Boxes      [][4]float64
	}
	b.eval(t, `(() => {
		const f = [...document.querySelectorAll('#gallery ~ .gallery figure')].find(f => f.dataset.path === 'astronaut.png');
		const img = f.querySelector('img'), r = img.getBoundingClientRect();
		return JSON.stringify({X: r.x + scrollX, Y: r.y + scrollY, W: r.width, H: r.height, Src: img.src,
			Boxes: [...f.querySelectorAll('rect')].map(e => ['x','y','width','height'].map(a => +e.getAttribute(a)))});
	})()`, &fig)
	if len(fig.Boxes) != 1 {
		t.Fatalf("astronaut thumbnail has %d boxes, want 1 face", len(fig.Boxes))
	}
	shot := b.screenshot(t, fig.X, fig.Y, fig.W, fig.H, 1)
	plain := decodeDataURI(t, fig.Src)
	isBox := func(c color.Color) bool {
		r, g, b, _ := c.RGBA()
		return r>>8 > 200 && g>>8 < 90 && b>>8 > 200
	}
	box := fig.Boxes[0]
	onEdge, inPlain, inside := 0, 0, 0
	for i := 0; i < 20; i++ {
		x := int(box[0] + box[2]*float64(i+1)/21)
		y := int(box[1]) // the top edge
		if isBox(shot.At(x, y)) {
			onEdge++
		}
		if isBox(plain.At(x, y)) {
			inPlain++
		}
		if isBox(shot.At(x, int(box[1]+box[3]/2))) {
			inside++
		}
	}
	if onEdge < 18 || inPlain > 0 || inside > 0 {
		t.Errorf("face box: %d/20 box-coloured pixels on its top edge in the page, %d in the image without the box, %d across its middle", onEdge, inPlain, inside)
	}
	if os.Getenv("SCV_UPDATE_SCREENSHOT") != "" {
		var full bytes.Buffer
		png.Encode(&full, b.screenshot(t, 0, 0, 1100, 1900, 0.55))
		if err := os.WriteFile(filepath.Join(testenv.RepoRoot(t), "docs", "report.png"), full.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// load opens url, waits for its load event and returns what went wrong: console
// errors, exceptions, and every request that is not the page itself or a data: URI.
func (b *browser) load(t *testing.T, url string) []string {
	t.Helper()
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		b.call("page", m, map[string]any{}, nil)
	}
	for len(b.events) > 0 {
		<-b.events
	}
	b.call("page", "Page.navigate", map[string]any{"url": url}, nil)
	var problems []string
	loaded := false
	deadline := time.After(30 * time.Second)
	settle := time.After(time.Hour)
	for {
		select {
		case m, ok := <-b.events:
			if !ok {
				t.Fatal("chromium exited")
			}
			switch m.Method {
			case "Page.loadEventFired":
				if !loaded {
					loaded = true
					settle = time.After(700 * time.Millisecond)
				}
			case "Network.requestWillBeSent":
				var p struct{ Request struct{ URL string } }
				json.Unmarshal(m.Params, &p)
				if u := p.Request.URL; u != url && !strings.HasPrefix(u, "data:") {
					problems = append(problems, "request "+u)
				}
			case "Runtime.consoleAPICalled":
				var p struct {
					Type string
					Args []struct{ Value any }
				}
				json.Unmarshal(m.Params, &p)
				if p.Type == "error" || p.Type == "warning" {
					problems = append(problems, fmt.Sprintf("console %s: %v", p.Type, p.Args))
				}
			case "Runtime.exceptionThrown":
				problems = append(problems, "exception: "+string(m.Params))
			case "Log.entryAdded":
				var p struct {
					Entry struct{ Level, Text, URL string }
				}
				json.Unmarshal(m.Params, &p)
				if p.Entry.Level == "error" || p.Entry.Level == "warning" {
					problems = append(problems, fmt.Sprintf("log %s: %s %s", p.Entry.Level, p.Entry.Text, p.Entry.URL))
				}
			}
		case <-settle:
			return problems
		case <-deadline:
			t.Fatalf("%s did not load in 30s", url)
		}
	}
}

// eval runs a JavaScript expression in the page (DevTools evaluation, which the
// page's policy does not restrict) that returns JSON, and decodes it into out.
func (b *browser) eval(t *testing.T, expr string, out any) {
	t.Helper()
	var res struct {
		Result struct {
			Value string
		}
		ExceptionDetails json.RawMessage
	}
	b.call("page", "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res)
	if len(res.ExceptionDetails) > 0 {
		t.Fatalf("evaluate: %s", res.ExceptionDetails)
	}
	if err := json.Unmarshal([]byte(res.Result.Value), out); err != nil {
		t.Fatalf("evaluate: %v: %q", err, res.Result.Value)
	}
}

// screenshot captures a region of the page (CSS pixels) at scale.
func (b *browser) screenshot(t *testing.T, x, y, w, h, scale float64) image.Image {
	t.Helper()
	var res struct{ Data string }
	b.call("page", "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": x, "y": y, "width": w, "height": h, "scale": scale}}, &res)
	raw, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func decodeDataURI(t *testing.T, uri string) image.Image {
	t.Helper()
	_, b64, ok := strings.Cut(uri, ";base64,")
	if !ok {
		t.Fatalf("not a base64 data URI: %.40s", uri)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}
