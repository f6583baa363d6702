package doctor

import (
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/config"
)

func TestWriteText(t *testing.T) {
	checks := append(Settings([]config.Setting{{Name: "cache", Value: "/c", Source: "flag --cache"}, {Name: "tmpdir", Source: "default"}}),
		Check{Name: "mksquashfs", Status: OK, Detail: "4.6"},
		Check{Name: "runtime", Status: Fail, Detail: "none found", Fix: "install apptainer"},
		Check{Name: "gpu", Status: Warn, Detail: "no driver"})
	var b strings.Builder
	if err := WriteText(&b, checks); err != nil {
		t.Fatal(err)
	}
	want := `ok    setting cache   /c (from flag --cache)
ok    setting tmpdir  - (from default)
ok    mksquashfs      4.6
fail  runtime         none found
                      fix: install apptainer
warn  gpu             no driver
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	if n := Failed(checks); n != 1 {
		t.Errorf("Failed = %d, want 1", n)
	}
}
