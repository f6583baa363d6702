package report

import (
	"bytes"
	"encoding/base64"
	"image"
	_ "image/jpeg"
	"strings"
	"testing"
)

func decodeDataURI(t *testing.T, uri string) image.Image {
	t.Helper()
	b64, ok := strings.CutPrefix(uri, "data:image/jpeg;base64,")
	if !ok {
		t.Fatalf("not a JPEG data URI: %.40s", uri)
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
