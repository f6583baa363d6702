package convert

import (
	"bytes"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestBuiltinReplacedFiles: the builtin packer writes each file's bytes as
// its layer is read, so a file that a later entry replaces or removes leaves
// its bytes unreachable in the image. The tree must still be exactly the
// merged one (the same unsquashfs listing and contents as tar2sqfs's
// two-pass stream); the unused bytes must be logged; and past the threshold
// the image is written again from the merged layers, leaving none.
func TestBuiltinReplacedFiles(t *testing.T) {
	testenv.Need(t, "tar2sqfs", "unsquashfs")
	big := strings.Repeat("0123456789abcdef", 1<<12) // 64 KiB
	tests := []struct {
		name        string
		img         v1.Image
		wantUnused  bool
		wantRewrite bool
	}{
		{"nothing replaced", imageOf(t, demoConfig,
			[]ent{dir("etc", 0o755), file("etc/os-release", "ID=test\n", 0o644)},
			[]ent{file("opt/app", "app", 0o755), hardlink("opt/app2", "opt/app")}), false, false},
		{"file replaced above", imageOf(t, demoConfig,
			[]ent{file("etc/os-release", "ID=test\n", 0o644), file("etc/keep", "k", 0o644)},
			[]ent{file("etc/os-release", "ID=new\n", 0o644)}), true, false},
		{"file removed above", imageOf(t, demoConfig,
			[]ent{file("etc/os-release", "ID=test\n", 0o644), file("etc/gone", "g", 0o644)},
			[]ent{whiteout("etc/.wh.gone")}), true, false},
		{"file replaced in its own layer", imageOf(t, demoConfig,
			[]ent{file("a", "1", 0o644), file("a", "2", 0o644)}), true, false},
		{"a hard link keeps a removed name's bytes", imageOf(t, demoConfig,
			[]ent{file("opt/app", "app", 0o755), hardlink("opt/app2", "opt/app")},
			[]ent{whiteout("opt/.wh.app")}), false, false},
		{"a big file, nothing replaced", imageOf(t, demoConfig,
			[]ent{file("data/big", big, 0o644)}, []ent{file("data/other", big[:100], 0o644)}), false, false},
		{"most bytes replaced: written again", imageOf(t, demoConfig,
			[]ent{file("data/big", big, 0o644), file("data/small", "s", 0o644)},
			[]ent{file("data/big", "now small", 0o644)}), true, true},
		{"a file the conversion writes itself", imageOf(t, demoConfig,
			[]ent{file("etc/os-release", "ID=test\n", 0o644), file("etc/hosts", "127.0.0.1 x\n", 0o644)}), true, false},
		{"the demo image", demoImage(t), true, false},
	}
	defer func(share, min int64) { maxUnusedShare, minUnusedRewrite = share, min }(maxUnusedShare, minUnusedRewrite)
	maxUnusedShare, minUnusedRewrite = 2, 32<<10
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			dir := t.TempDir()
			got := convertTo(t, tt.img, dir, "builtin.sif", Options{Packer: PackerBuiltin, Log: zerolog.New(&log).Level(zerolog.InfoLevel)})
			want := convertTo(t, tt.img, dir, "tar2sqfs.sif", Options{Packer: PackerTar2sqfs, TwoPass: true})
			if g, w := listing(t, got), listing(t, want); g != w {
				t.Fatalf("builtin tree:\n%s\ntar2sqfs tree:\n%s", g, w)
			}
			unused := strings.Contains(log.String(), "stay in the image, unreachable")
			rewrite := strings.Contains(log.String(), "writing the image again")
			if unused && !tt.wantRewrite != tt.wantUnused || rewrite != tt.wantRewrite {
				t.Errorf("unused bytes left = %v (want %v), written again = %v (want %v); log:\n%s",
					unused, tt.wantUnused, rewrite, tt.wantRewrite, log.String())
			}
			two := convertTo(t, tt.img, dir, "two.sif", Options{Packer: PackerBuiltin, TwoPass: true})
			if (testenv.FileSHA256(t, got) == testenv.FileSHA256(t, two)) != (!tt.wantUnused || tt.wantRewrite) {
				t.Errorf("one pass and two passes: same SIF = %v, want %v", !(!tt.wantUnused || tt.wantRewrite), !tt.wantUnused || tt.wantRewrite)
			}
		})
	}
}
