package fetch

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/catalog"
)

func TestWriteModelsAndCard(t *testing.T) {
	faces := CatalogModel{Entry: &catalog.Entry{Name: "faces", Version: "1.0", Image: "r/faces:1", Tasks: []string{"detect", "faces"}, Source: "default"},
		ID: "faces@1.0", Cached: true, Digest: "sha256:1", SIF: "/c/1.sif", Command: []string{"serve", "a b"}, From: PredictFromCatalog}
	old := CatalogModel{Entry: &catalog.Entry{Name: "old", Image: "r/old:1", GPU: true, Deprecated: "use faces", Source: "site.yaml"}, ID: "old"}
	var b strings.Builder
	if err := WriteModels(&b, []CatalogModel{faces, old}); err != nil {
		t.Fatal(err)
	}
	want := `NAME              VERSION  GPU  TASKS         CACHED  IMAGE
faces             1.0      no   detect,faces  yes     r/faces:1
old (deprecated)  -        yes  -             no      r/old:1
`
	if b.String() != want {
		t.Errorf("WriteModels:\n%s\nwant\n%s", b.String(), want)
	}
	for _, tc := range []struct {
		m    CatalogModel
		want string
	}{
		{faces, `name:        faces
version:     1.0
image:       r/faces:1
description: -
tasks:       detect, faces
gpu:         no
predict:     serve 'a b'  (from catalog)
deprecated:  -
catalog:     default
cached:      sha256:1
sif:         /c/1.sif
`},
		{old, `name:        old
version:     -
image:       r/old:1
description: -
tasks:       -
gpu:         yes
predict:     from the image (label ` + PredictLabel + `, else Entrypoint+Cmd); pull it to see
deprecated:  use faces
catalog:     site.yaml
cached:      no (run 'scv-hpc pull old')
`},
	} {
		var b strings.Builder
		if err := tc.m.WriteCard(&b); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("WriteCard:\n%s\nwant\n%s", b.String(), tc.want)
		}
	}
}

// TestPullAllRows: PullAll with force converts again what is cached; the rows say
// converted, cached or failed (with the text explain gives), and WriteRows shows them.
func TestPullAllRows(t *testing.T) {
	_, _, digest, o := demoModel(t)
	models := []string{"demo", "no-such-model"}
	explain := func(m string, err error) error { return fmt.Errorf("%w; try harder with %s", err, m) }
	for _, tc := range []struct {
		force bool
		want  string
	}{{false, "converted"}, {false, "cached"}, {true, "converted"}} {
		rows, failed := Rows(models, PullAll(ctx(t), models, o, 2, tc.force, nil), explain)
		if failed != 1 || rows[0].Status != tc.want || rows[0].Digest != digest || rows[1].Status != "failed" ||
			!strings.HasSuffix(rows[1].Error, "; try harder with no-such-model") {
			t.Errorf("force %v: rows %+v, %d failed; want demo %s", tc.force, rows, failed, tc.want)
		}
		var b strings.Builder
		if err := WriteRows(&b, rows); err != nil {
			t.Fatal(err)
		}
		if lines := strings.Split(b.String(), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[0], "MODEL") ||
			!strings.Contains(lines[1], tc.want+"  "+digest+"  "+rows[0].SIF) || strings.Join(strings.Fields(lines[2]), " ") != "no-such-model failed - -" {
			t.Errorf("WriteRows:\n%s", b.String())
		}
	}
	if rs := PullAll(ctx(t), models, o, 1, true, nil); !errors.Is(rs[1].Err, catalog.ErrUnknown) {
		t.Errorf("unknown model: %v", rs[1].Err)
	}
}
