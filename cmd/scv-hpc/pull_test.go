package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// binCLI runs the real scv-hpc binary with its own cache and catalog.
type binCLI struct {
	t       testing.TB
	bin     string
	cache   string
	catalog string
	home    string
}

func newCLI(t testing.TB, catalogYAML string) *binCLI {
	t.Helper()
	testenv.Need(t, "mksquashfs", "unsquashfs")
	c := &binCLI{t: t, bin: testenv.Binary(t), cache: filepath.Join(t.TempDir(), "cache"), home: t.TempDir()}
	if catalogYAML != "" {
		c.catalog = filepath.Join(t.TempDir(), "catalog.yaml")
		if err := os.WriteFile(c.catalog, []byte(catalogYAML), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *binCLI) command(ctx context.Context, args ...string) *exec.Cmd {
	full := []string{"--log-format", "json", "--cache", c.cache}
	if c.catalog != "" {
		full = append(full, "--catalog", c.catalog)
	}
	cmd := exec.CommandContext(ctx, c.bin, append(full, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home, "TMPDIR=" + c.home, "DOCKER_CONFIG=" + c.home}
	return cmd
}

// run runs scv-hpc and returns stdout, stderr and the exit code.
func (c *binCLI) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), 3*time.Minute)
	defer cancel()
	cmd := c.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		c.t.Fatalf("scv-hpc %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), code
}

// ok runs scv-hpc and fails the test unless it exits 0.
func (c *binCLI) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("scv-hpc %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// fakeFaces is a small image laid out like the demo model's: the binary in
// /usr/local/bin/faces, the predict label, an entrypoint. extra adds an incompressible
// file of that many bytes, to make conversions slow enough to interrupt.
func fakeFaces(t testing.TB, arch string, extra int) v1.Image {
	t.Helper()
	files := []imagebuild.File{
		{Path: "/usr/local/bin/faces", Mode: 0o755, Data: []byte("#!/bin/sh\necho '{\"scv\":1,\"ready\":true}'\n")},
		{Path: "/usr/local/share/faces/facefinder", Mode: 0o644, Data: []byte("cascade")},
	}
	if extra > 0 {
		b := make([]byte, extra)
		rand.Read(b)
		files = append(files, imagebuild.File{Path: "/usr/local/share/faces/weights.bin", Mode: 0o644, Data: b})
	}
	return testenv.Image(t, files, imagebuild.Config{
		Platform:   "linux/" + arch,
		Entrypoint: []string{"/usr/local/bin/faces"},
		Labels:     map[string]string{"org.scivision.predict": "/usr/local/bin/faces --serve"},
	})
}

func facesCatalog(host string) string {
	return fmt.Sprintf("models:\n  - {name: faces, version: \"1.0\", image: %q, tasks: [object-detection]}\n  - {name: absent, image: %q}\n",
		host+"/scivision/faces:1.0", host+"/scivision/absent:1")
}

var primaryRow = regexp.MustCompile(`(?m)^1\s+\|1\s+\|NONE\s+\|(\d+)-(\d+)\s+\|FS \(Squashfs/\*System/amd64\)`)

// TestPullRealRegistry pushes the demo model's image to Debian's docker-registry, pulls
// it through the catalog, and checks the SIF with tools that are not ours: siftool sees
// a squashfs primary partition, unsquashfs lists the image's files and /.singularity.d/.
func TestPullRealRegistry(t *testing.T) {
	testenv.Need(t, "siftool")
	host := testenv.StartRegistry(t)
	img := testenv.FacesImage(t)
	ref := host + "/scivision/faces:1.0"
	if err := imagebuild.Push(t.Context(), img, ref, registry.Options{}); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	digest := d.String()
	c := newCLI(t, facesCatalog(host))

	out := c.ok("pull", "faces")
	if !regexp.MustCompile(`(?m)^faces\s+converted\s+` + regexp.QuoteMeta(digest) + `\s+/`).MatchString(out) {
		t.Fatalf("pull output:\n%s", out)
	}
	path := c.ok("cache", "path", "faces")
	if strings.Count(path, "\n") != 1 {
		t.Fatalf("cache path printed %q, want one line", path)
	}
	sifPath := strings.TrimSpace(path)
	if filepath.Base(sifPath) != strings.TrimPrefix(digest, "sha256:")+".sif" {
		t.Errorf("SIF %s is not named by the digest %s", sifPath, digest)
	}

	list, err := exec.Command("siftool", "list", sifPath).CombinedOutput()
	if err != nil {
		t.Fatalf("siftool list: %v\n%s", err, list)
	}
	m := primaryRow.FindStringSubmatch(string(list))
	if m == nil {
		t.Fatalf("siftool list shows no squashfs primary partition:\n%s", list)
	}
	info, err := exec.Command("siftool", "info", "1", sifPath).CombinedOutput()
	if err != nil || !strings.Contains(string(info), "Filesystem Type:  Squashfs") || !strings.Contains(string(info), "Partition Type:   *System") {
		t.Fatalf("siftool info 1: %v\n%s", err, info)
	}
	offset := m[1]
	if js := c.ok("inspect", "faces", "--json"); !strings.Contains(js, `"primary_offset": `+offset) {
		t.Errorf("inspect --json disagrees with siftool on the offset %s:\n%s", offset, js)
	}
	files, err := exec.Command("unsquashfs", "-l", "-o", offset, sifPath).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -l -o %s: %v\n%s", offset, err, files)
	}
	for _, want := range []string{"squashfs-root/usr/local/bin/faces", "squashfs-root/usr/share/faces/facefinder",
		"squashfs-root/.singularity.d/runscript", "squashfs-root/.singularity.d/env"} {
		if !strings.Contains(string(files), want+"\n") {
			t.Errorf("unsquashfs -l does not list %s:\n%s", want, files)
		}
	}

	text := c.ok("inspect", sifPath)
	for _, want := range []string{digest, ref, "/usr/local/bin/faces"} {
		if !strings.Contains(text, want) {
			t.Errorf("inspect does not show %s:\n%s", want, text)
		}
	}
	if out := c.ok("pull", "faces"); !strings.Contains(out, "cached") {
		t.Errorf("second pull did not use the cache:\n%s", out)
	}
	before := testenv.FileSHA256(t, sifPath)
	if out := c.ok("pull", "--force", "faces"); !strings.Contains(out, "converted") {
		t.Errorf("pull --force did not convert again:\n%s", out)
	}
	if after := testenv.FileSHA256(t, sifPath); after != before {
		t.Errorf("converting the same digest again changed the SIF: %s != %s (not deterministic)", after, before)
	}
	c.ok("cache", "verify")
	if _, errs, code := c.run("--offline", "pull", "--force", "faces"); code != 1 || !strings.Contains(errs, "--offline") {
		t.Errorf("--offline pull --force: exit %d\n%s", code, errs)
	}
}

// TestPullConcurrentProcesses runs eight pulls of one image at once: one conversion,
// eight exit 0, one valid SIF.
func TestPullConcurrentProcesses(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 4<<20), reg.Host+"/scivision/faces:1.0")
	c := newCLI(t, facesCatalog(reg.Host))
	const n = 8
	type res struct {
		out, err string
		code     int
	}
	var wg sync.WaitGroup
	results := make([]res, n)
	for i := range n {
		wg.Go(func() {
			o, e, code := c.run("pull", "faces")
			results[i] = res{o, e, code}
		})
	}
	wg.Wait()
	converted, sifs := 0, map[string]bool{}
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("pull %d: exit %d\n%s\n%s", i, r.code, r.out, r.err)
		}
		f := strings.Fields(strings.Split(strings.TrimSpace(r.out), "\n")[1])
		if f[1] == "converted" {
			converted++
		}
		sifs[f[3]] = true
		if strings.Count(r.err, `"message":"converting to SIF"`) > 0 && f[1] != "converted" {
			t.Errorf("pull %d logged a conversion but reports %s", i, f[1])
		}
	}
	logged := 0
	for _, r := range results {
		logged += strings.Count(r.err, `"message":"converting to SIF"`)
	}
	if converted != 1 || len(sifs) != 1 || logged != 1 {
		t.Fatalf("%d conversions reported, %d logged, %d SIF paths; want 1, 1, 1: %+v", converted, logged, len(sifs), results)
	}
	out := c.ok("cache", "verify")
	if strings.Count(out, "\nok ") != 1 {
		t.Errorf("cache verify:\n%s", out)
	}
}

// TestPullKilledMidConversion kills a pull with SIGKILL while it converts: nothing it
// leaves is trusted, and the next pull converts again and succeeds.
func TestPullKilledMidConversion(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	testenv.Push(t, fakeFaces(t, "amd64", 48<<20), reg.Host+"/scivision/faces:1.0")
	c := newCLI(t, facesCatalog(reg.Host))

	cmd := c.command(t.Context(), "pull", "faces")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it while it packs the layers (its squashfs is being written): the lock
	// is held, the conversion is half done.
	deadline := time.Now().Add(time.Minute)
	for !packing(cmd.Process.Pid, c.cache) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the pull never packed a squashfs")
		}
		time.Sleep(2 * time.Millisecond)
	}
	child := childNamed(cmd.Process.Pid, "tar2sqfs") // 0 with the builtin packer
	// The conversion's lock, and the layer download's while it still runs (the
	// conversion reads the layer as it downloads).
	if locks, _ := filepath.Glob(filepath.Join(c.cache, "locks", "sha256-*.lock")); len(locks) < 1 || len(locks) > 2 {
		t.Errorf("locks during the conversion: %v, want the conversion's and perhaps the download's", locks)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// tar2sqfs dies with its parent (PR_SET_PDEATHSIG).
	for i := 0; child != 0 && syscall.Kill(child, 0) == nil; i++ {
		if i == 500 {
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatal("tar2sqfs outlived the killed pull")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the pull finished (%v) before it was killed: make the image bigger", cmd.ProcessState)
	}

	if _, _, code := c.run("cache", "path", "faces"); code == 0 {
		t.Fatal("cache path trusts the killed conversion")
	}
	out, _, code := c.run("cache", "verify")
	if regexp.MustCompile(`(?m)^ok\s`).MatchString(out) || code != 1 || !strings.Contains(out, "stale-lock") {
		t.Fatalf("cache verify after the kill: exit %d, want 1 with the stale lock and no ok entry:\n%s", code, out)
	}
	if out := c.ok("pull", "faces"); !regexp.MustCompile(`(?m)^faces\s+converted\s`).MatchString(out) {
		t.Fatalf("pull after the kill did not convert:\n%s", out)
	}
	c.ok("cache", "gc")
	if out := c.ok("cache", "verify"); !regexp.MustCompile(`(?m)^ok\s`).MatchString(out) {
		t.Fatalf("cache verify after gc:\n%s", out)
	}
	// No temp file of the killed pull survives: neither in the cache nor in TMPDIR.
	left, _ := filepath.Glob(filepath.Join(c.cache, "tmp", "*"))
	scratch, _ := filepath.Glob(filepath.Join(c.home, "scv-hpc-*"))
	if len(left)+len(scratch) > 0 {
		t.Errorf("temp files survived the next pull and cache gc: %v %v", left, scratch)
	}
}

// TestOfflineAndFailureClasses: with the registry stopped, --offline serves cached
// models and fails uncached ones with one clear line; each online failure class
// (unreachable, no such tag, no matching platform) says what it is.
func TestOfflineAndFailureClasses(t *testing.T) {
	reg := testenv.StartRegistryStoppable(t)
	digest := testenv.Push(t, fakeFaces(t, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	testenv.Push(t, fakeFaces(t, "arm64", 0), reg.Host+"/scivision/armonly:1")
	c := newCLI(t, facesCatalog(reg.Host))

	tests := []struct {
		args  []string
		words []string
	}{
		{[]string{"pull", reg.Host + "/scivision/faces:nope"}, []string{"faces:nope", "not found"}},
		{[]string{"pull", reg.Host + "/scivision/armonly:1"}, []string{"armonly:1", "no linux/amd64 variant", "linux/arm64", "--platform"}},
	}
	for _, tt := range tests {
		_, errs, code := c.run(tt.args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", tt.args, code)
		}
		checkErrLine(t, tt.args, errs, tt.words)
	}
	c.ok("pull", "faces")
	sifPath := strings.TrimSpace(c.ok("cache", "path", "faces"))
	reg.Stop()

	// Online with the registry gone: a cached model runs what its tag last resolved to,
	// with a warning; an uncached one fails naming the registry and --offline.
	out, errs, code := c.run("pull", "faces")
	if code != 0 || !strings.Contains(out, sifPath) || !strings.Contains(errs, "registry unreachable: using the cached image") {
		t.Errorf("online pull of a cached model with the registry stopped: exit %d\n%s\n%s", code, out, errs)
	}
	_, errs, code = c.run("pull", "absent")
	if code != 1 {
		t.Errorf("online pull of an uncached model with the registry stopped: exit %d", code)
	}
	checkErrLine(t, "unreachable", errs, []string{`model "absent"`, reg.Host, "unreachable", "--offline"})

	for _, model := range []string{"faces", "faces@1.0", reg.Host + "/scivision/faces:1.0", "faces@" + digest} {
		out := c.ok("--offline", "pull", model)
		if !strings.Contains(out, "cached") || !strings.Contains(out, sifPath) {
			t.Errorf("--offline pull %s:\n%s", model, out)
		}
	}
	if got := strings.TrimSpace(c.ok("--offline", "cache", "path", "faces")); got != sifPath {
		t.Errorf("--offline cache path = %s, want %s", got, sifPath)
	}
	_, errs, code = c.run("--offline", "pull", "absent")
	if code != 1 {
		t.Errorf("--offline pull absent: exit %d, want 1", code)
	}
	want := fmt.Sprintf(`scv-hpc: model "absent" (%s/scivision/absent:1) is not in the cache %s and offline mode is set; on a machine with network run: scv-hpc stage absent --cache %s`, reg.Host, c.cache, c.cache)
	if last := lastLine(errs); last != want {
		t.Errorf("--offline miss:\n got %s\nwant %s", last, want)
	}
}

// childNamed returns the pid of a child of parent whose command is name, or 0.
// packing reports whether the pull pid is packing a squashfs into cache: its
// partition file (CACHE/tmp/*.sqfs) holds more than 1 MiB, or a squashfs tool
// runs as its child.
func packing(pid int, cache string) bool {
	parts, _ := filepath.Glob(filepath.Join(cache, "tmp", "*.sqfs"))
	for _, p := range parts {
		if st, err := os.Stat(p); err == nil && st.Size() > 1<<20 {
			return true
		}
	}
	return childNamed(pid, "tar2sqfs") != 0 || childNamed(pid, "mksquashfs") != 0
}

func childNamed(parent int, name string) int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if s[open+1:close] == name && len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
			pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
			return pid
		}
	}
	return 0
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// checkErrLine checks that stderr ends with exactly one "scv-hpc: …" line holding words.
func checkErrLine(t *testing.T, what any, stderr string, words []string) {
	t.Helper()
	if n := strings.Count(stderr, "\nscv-hpc: ") + strings.Count(stderr[:min(len(stderr), 9)], "scv-hpc: "); n != 1 {
		t.Errorf("%v: %d error lines in stderr, want 1:\n%s", what, n, stderr)
	}
	last := lastLine(stderr)
	for _, w := range words {
		if !strings.Contains(last, w) {
			t.Errorf("%v: error line %q does not mention %q", what, last, w)
		}
	}
}

// BenchmarkOfflineCacheHit times whole 'scv-hpc --offline pull faces' and 'cache path'
// processes on a cached model (target: under 50 ms each).
func BenchmarkOfflineCacheHit(b *testing.B) {
	reg := testenv.StartRegistryStoppable(b)
	testenv.Push(b, fakeFaces(b, "amd64", 0), reg.Host+"/scivision/faces:1.0")
	c := newCLI(b, facesCatalog(reg.Host))
	c.ok("pull", "faces")
	reg.Stop()
	for _, args := range [][]string{{"--offline", "pull", "faces"}, {"--offline", "cache", "path", "faces"}} {
		b.Run(strings.Join(args[1:], "-"), func(b *testing.B) {
			for b.Loop() {
				c.ok(args...)
			}
		})
	}
}
