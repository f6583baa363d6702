package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

var demoConfig = v1.Config{
	Env: []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"FOO=bar baz",
		"QUOTED=it's \"$HOME\" `x`",
		"EMPTY=",
		"NOVALUE",
		"bad name=skipped",
	},
	Entrypoint: []string{"/bin/echo", "hello world"},
	Cmd:        []string{"a b"},
	WorkingDir: "/work",
	Labels:     map[string]string{"org.scivision.predict": "faces --json", "maintainer": "scv"},
}

func demoImage(t testing.TB) v1.Image {
	return imageOf(t, demoConfig,
		[]ent{dir("etc", 0o755), file("etc/os-release", "ID=test\n", 0o644), file("etc/gone", "x", 0o644),
			file("bin/tool", "#!/bin/sh\necho tool\n", 0o755), symlink("bin/alias", "tool"), hardlink("bin/hl", "bin/tool")},
		[]ent{whiteout("etc/.wh.gone"), dir("work", 0o775), file("work/model.bin", strings.Repeat("w", 5000), 0o644)},
	)
}

var demoProv = Provenance{Ref: "registry.example/demo:1", Digest: "sha256:" + strings.Repeat("ab", 32), Tool: "scv-hpc test"}

// convertTo converts img into dir/name and returns the SIF path.
func convertTo(t testing.TB, img v1.Image, dir, name string, opts Options) string {
	t.Helper()
	if opts.TmpDir == "" {
		opts.TmpDir = t.TempDir()
	}
	if opts.Log.GetLevel() == zerolog.DebugLevel || opts.Log.GetLevel() == zerolog.TraceLevel {
		opts.Log = testLogger(t) // the zero Logger: no test gives its own at debug level
	}
	dst := filepath.Join(dir, name)
	if err := Convert(t.Context(), img, dst, demoProv, opts); err != nil {
		t.Fatalf("convert: %v", err)
	}
	assertEmptyDir(t, opts.TmpDir)
	return dst
}

func assertEmptyDir(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind in the temporary directory: %s", filepath.Join(dir, e.Name()))
	}
}

// TestConvertCheckedBySiftool checks a converted SIF with tools that are not
// ours: siftool sees a squashfs primary partition and the JSON descriptors,
// unsquashfs lists the image's files and /.singularity.d/.
func TestConvertCheckedBySiftool(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs", "siftool")
	sifPath := convertTo(t, demoImage(t), t.TempDir(), "demo.sif", Options{})

	// Debian's siftool lists the primary system partition as
	// "FS (Squashfs/*System/amd64)"; the star marks it primary.
	list := testenv.Run(t, "siftool", "list", sifPath)
	primID := ""
	byName := map[string]string{} // descriptor name -> ID
	for _, line := range strings.Split(list, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !regexp.MustCompile(`^\d+$`).MatchString(fields[0]) {
			continue
		}
		switch {
		case strings.Contains(line, "FS (Squashfs/*System/amd64)"):
			primID = fields[0]
		case strings.Contains(line, "JSON.Generic"):
			info := testenv.Run(t, "siftool", "info", fields[0], sifPath)
			if m := regexp.MustCompile(`Name:\s+(\S+)`).FindStringSubmatch(info); m != nil {
				byName[m[1]] = fields[0]
			}
		}
	}
	if primID == "" {
		t.Fatalf("siftool list shows no squashfs primary system partition:\n%s", list)
	}
	info := testenv.Run(t, "siftool", "info", primID, sifPath)
	for _, want := range []string{`Filesystem Type:\s+Squashfs`, `Partition Type:\s+\*System`, `Architecture:\s+amd64`} {
		if !regexp.MustCompile(want).MatchString(info) {
			t.Errorf("siftool info %s lacks %s:\n%s", primID, want, info)
		}
	}
	for _, want := range []string{sif.DescOCIConfig, sif.DescLabels, sif.DescProvenance} {
		if byName[want] == "" {
			t.Errorf("no JSON descriptor named %s in:\n%s", want, list)
		}
	}
	if hdr := testenv.Run(t, "siftool", "header", sifPath); !strings.Contains(hdr, "run-singularity") {
		t.Errorf("launch script missing from header:\n%s", hdr)
	}

	// The descriptors, dumped by siftool, hold the config, labels and provenance.
	var cfg v1.Config
	var labels map[string]string
	var prov Provenance
	for name, v := range map[string]any{sif.DescOCIConfig: &cfg, sif.DescLabels: &labels, sif.DescProvenance: &prov} {
		if id := byName[name]; id != "" {
			dump := testenv.Run(t, "siftool", "dump", id, sifPath)
			if err := json.Unmarshal([]byte(dump), v); err != nil {
				t.Fatalf("%s: %v\n%s", name, err, dump)
			}
		}
	}
	if fmt.Sprint(cfg.Entrypoint) != fmt.Sprint(demoConfig.Entrypoint) || cfg.WorkingDir != "/work" {
		t.Errorf("oci-config.json = %+v", cfg)
	}
	if labels["org.scivision.predict"] != "faces --json" {
		t.Errorf("labels.json = %v", labels)
	}
	wantProv := demoProv
	wantProv.Platform = "linux/amd64"
	if prov != wantProv {
		t.Errorf("provenance = %+v, want %+v", prov, wantProv)
	}

	offset, size, err := sif.PrimaryPartition(sifPath)
	if err != nil {
		t.Fatal(err)
	}
	if offset <= 0 || size <= 0 {
		t.Fatalf("primary partition at %d size %d", offset, size)
	}
	ls := testenv.Run(t, "unsquashfs", "-lls", "-o", fmt.Sprint(offset), sifPath)
	for _, want := range []string{
		"squashfs-root/etc/os-release", "squashfs-root/bin/tool", "squashfs-root/bin/alias -> tool",
		"squashfs-root/work/model.bin", "squashfs-root/singularity -> .singularity.d/runscript",
		"squashfs-root/environment -> .singularity.d/env/90-environment.sh",
		"squashfs-root/.singularity.d/runscript", "squashfs-root/.singularity.d/labels.json",
		"squashfs-root/.singularity.d/env/10-docker2singularity.sh", "squashfs-root/.singularity.d/env/01-base.sh",
		"squashfs-root/.singularity.d/env/90-environment.sh", "squashfs-root/.singularity.d/env/95-apps.sh",
		"squashfs-root/.singularity.d/env/99-base.sh", "squashfs-root/.singularity.d/libs",
		"squashfs-root/.singularity.d/actions/exec", "squashfs-root/.singularity.d/actions/run",
		"squashfs-root/.singularity.d/actions/shell", "squashfs-root/.singularity.d/actions/start",
		"squashfs-root/.singularity.d/actions/test",
	} {
		if !strings.Contains(ls, want) {
			t.Errorf("unsquashfs -lls lacks %q", want)
		}
	}
	if strings.Contains(ls, "etc/gone") {
		t.Errorf("whited-out /etc/gone is in the squashfs")
	}
	if !regexp.MustCompile(`drwxrwxr-x \S+\s+\S+ .*squashfs-root/work\n`).MatchString(ls) {
		t.Errorf("mode of /work not kept:\n%s", ls)
	}
	if t.Failed() {
		t.Logf("unsquashfs -lls:\n%s", ls)
	}
}

// TestConvertDeterministic converts the same image twice, with different
// temporary directories and thread counts, and wants the same bytes.
func TestConvertDeterministic(t *testing.T) {
	testenv.Need(t, "mksquashfs", "tar2sqfs")
	for _, packer := range packers {
		t.Run(packer, func(t *testing.T) {
			out := t.TempDir()
			a := convertTo(t, demoImage(t), out, "a.sif", Options{Packer: packer, Processors: 1})
			b := convertTo(t, demoImage(t), out, "b.sif", Options{Packer: packer, Processors: 2, NoSpool: true})
			if ha, hb := testenv.FileSHA256(t, a), testenv.FileSHA256(t, b); ha != hb {
				t.Fatalf("same image, different SIFs: %s vs %s", ha, hb)
			}
			// A different image must not give the same bytes (the check above would
			// otherwise pass for a constant output).
			other := imageOf(t, demoConfig, []ent{file("etc/os-release", "ID=other\n", 0o644)})
			c := convertTo(t, other, out, "c.sif", Options{Packer: packer})
			if testenv.FileSHA256(t, a) == testenv.FileSHA256(t, c) {
				t.Fatal("different images gave the same SIF")
			}
		})
	}
}

// packers are the four ways of making the squashfs; every conversion test
// that does not depend on the way runs with each.
var packers = []string{PackerBuiltin, PackerTar2sqfs, PackerMksquashfs, PackerTree}

// TestConvertPackersAgree converts the demo image with each packer and wants
// the same file tree: names, types, modes, owners, link targets and contents
// (unsquashfs -lln, and the files themselves).
func TestConvertPackersAgree(t *testing.T) {
	testenv.Need(t, "mksquashfs", "tar2sqfs", "unsquashfs")
	var want string
	for _, packer := range packers {
		p := convertTo(t, demoImage(t), t.TempDir(), "x.sif", Options{Packer: packer})
		got := listing(t, p)
		if want == "" {
			want = got
			continue
		}
		if got != want {
			t.Errorf("%s gives another tree than %s:\n%s\nwant:\n%s", packer, packers[0], got, want)
		}
	}
}

// listing is the unsquashfs -lln listing of the SIF's squashfs, with each
// regular file's sha256, sorted.
func listing(t testing.TB, sifPath string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	if err := sif.ExtractRootfs(t.Context(), sifPath, dir); err != nil {
		t.Fatal(err)
	}
	off, _, err := sif.PrimaryPartition(sifPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(testenv.Run(t, "unsquashfs", "-lln", "-o", fmt.Sprint(off), sifPath)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		name := strings.Join(f[5:], " ")
		name = strings.TrimPrefix(strings.TrimPrefix(name, "squashfs-root"), "/")
		size := f[2]
		if strings.HasPrefix(f[0], "d") {
			size = "-" // directory sizes depend on the packer's layout
		}
		line := f[0] + " " + f[1] + " " + size + " " + name
		if strings.HasPrefix(f[0], "-") {
			b, err := os.ReadFile(filepath.Join(dir, strings.SplitN(name, " -> ", 2)[0]))
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestConvertCompression checks each compressor the issue offers.
func TestConvertCompression(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	for _, packer := range packers {
		for _, comp := range []string{"gzip", "xz", "zstd", "lz4", "lzo"} {
			t.Run(packer+"/"+comp, func(t *testing.T) {
				testenv.Need(t, "tar2sqfs")
				if packer == PackerBuiltin && !builtinAlgos[comp] {
					err := Convert(t.Context(), demoImage(t), filepath.Join(t.TempDir(), "x.sif"), demoProv,
						Options{Packer: packer, Compression: Compression{Algo: comp}})
					if err == nil || !strings.Contains(err.Error(), "builtin squashfs packer has no "+comp) {
						t.Fatalf("builtin packer with %s: err = %v", comp, err)
					}
					return
				}
				p := convertTo(t, demoImage(t), t.TempDir(), "x.sif", Options{Packer: packer, Compression: Compression{Algo: comp}})
				off, _, err := sif.PrimaryPartition(p)
				if err != nil {
					t.Fatal(err)
				}
				stat := testenv.Run(t, "unsquashfs", "-s", "-o", fmt.Sprint(off), p)
				if !strings.Contains(stat, "Compression "+comp) {
					t.Errorf("unsquashfs -s does not report %s:\n%s", comp, stat)
				}
			})
		}
	}
}

func TestConvertArch(t *testing.T) {
	testenv.Need(t, "mksquashfs", "siftool")
	img := demoImage(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.Variant = "arm64", "v8"
	img = mustConfigFile(t, img, cf)
	p := convertTo(t, img, t.TempDir(), "arm.sif", Options{})
	if list := testenv.Run(t, "siftool", "list", p); !strings.Contains(list, "arm64") {
		t.Errorf("siftool list does not show arm64:\n%s", list)
	}
	info, err := sif.Inspect(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.Arch != "arm64" || info.Provenance.Platform != "linux/arm64/v8" {
		t.Errorf("arch %q platform %q", info.Arch, info.Provenance.Platform)
	}
}

// TestConvertMounts mounts the squashfs of SIFs from each packer the way the
// runtimes do: the kernel (as root, with a loop device at the partition's
// offset) and squashfuse (where /dev/fuse works), and reads a file and the
// runscript back. Skipped, with the reason, where the sandbox cannot mount.
func TestConvertMounts(t *testing.T) {
	testenv.Need(t, "mksquashfs", "tar2sqfs")
	for _, packer := range packers {
		for _, comp := range []string{"gzip", "zstd"} {
			p := convertTo(t, demoImage(t), t.TempDir(), "m.sif", Options{Packer: packer, Compression: Compression{Algo: comp}})
			off, _, err := sif.PrimaryPartition(p)
			if err != nil {
				t.Fatal(err)
			}
			mounts := []struct {
				name  string
				mount func(dir string) ([]byte, error)
			}{
				{"kernel", func(dir string) ([]byte, error) {
					if !isRoot() {
						t.Skip("kernel mount needs root")
					}
					return exec.Command("mount", "-t", "squashfs", "-o", fmt.Sprintf("loop,ro,offset=%d", off), p, dir).CombinedOutput()
				}},
				{"squashfuse", func(dir string) ([]byte, error) {
					if _, err := exec.LookPath("squashfuse"); err != nil {
						t.Skip("squashfuse is not installed")
					}
					return exec.Command("squashfuse", "-o", fmt.Sprintf("offset=%d", off), p, dir).CombinedOutput()
				}},
			}
			for _, m := range mounts {
				t.Run(packer+"/"+comp+"/"+m.name, func(t *testing.T) {
					dir := t.TempDir()
					if out, err := m.mount(dir); err != nil {
						t.Skipf("cannot mount here: %v %s", err, out)
					}
					t.Cleanup(func() {
						if err := exec.Command("umount", dir).Run(); err != nil {
							_ = exec.Command("fusermount", "-u", dir).Run()
						}
					})
					wantFile(t, dir, "etc/os-release", "ID=test\n")
					wantFile(t, dir, ".singularity.d/runscript", sif.Runscript(demoConfig))
				})
			}
		}
	}
}

// TestConvertOnePass: tar2sqfs is fed while the layers are read, and when a
// later layer replaces a file already streamed, the stream is written again.
// Either way the SIF is byte for byte the one of the two-pass stream, and the
// log says when the second stream ran.
func TestConvertOnePass(t *testing.T) {
	testenv.Need(t, "tar2sqfs")
	tests := []struct {
		name      string
		img       v1.Image
		wantAgain bool
	}{
		{"nothing replaced", imageOf(t, demoConfig,
			[]ent{dir("etc", 0o755), file("etc/os-release", "ID=test\n", 0o644), file("etc/hosts", "127.0.0.1 x\n", 0o644)},
			[]ent{file("opt/app", "app", 0o755), hardlink("opt/app2", "opt/app")}), false},
		{"file replaced above", imageOf(t, demoConfig,
			[]ent{file("etc/os-release", "ID=test\n", 0o644), file("etc/keep", "k", 0o644)},
			[]ent{file("etc/os-release", "ID=new\n", 0o644)}), true},
		{"file removed above", imageOf(t, demoConfig,
			[]ent{file("etc/os-release", "ID=test\n", 0o644), file("etc/gone", "g", 0o644)},
			[]ent{whiteout("etc/.wh.gone")}), true},
		{"file replaced in its own layer", imageOf(t, demoConfig,
			[]ent{file("a", "1", 0o644), file("a", "2", 0o644)}), true},
		{"the demo image", demoImage(t), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			dir := t.TempDir()
			one := convertTo(t, tt.img, dir, "one.sif", Options{Packer: PackerTar2sqfs, Log: zerolog.New(&log).Level(zerolog.InfoLevel)})
			two := convertTo(t, tt.img, dir, "two.sif", Options{Packer: PackerTar2sqfs, TwoPass: true})
			if testenv.FileSHA256(t, one) != testenv.FileSHA256(t, two) {
				t.Errorf("single pass and two passes give different SIFs")
			}
			if again := strings.Contains(log.String(), "streaming the merged image again"); again != tt.wantAgain {
				t.Errorf("streamed again = %v, want %v; log:\n%s", again, tt.wantAgain, log.String())
			}
		})
	}
}
