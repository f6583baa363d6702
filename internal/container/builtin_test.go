package container

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"

	scvsif "github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

func TestMain(m *testing.M) {
	MaybeRunChild()
	os.Exit(m.Run())
}

// buildSIF makes a real SIF: rootfs (a static probe program at /bin/probe) squashed
// with mksquashfs, as the primary partition, plus an oci-config.json descriptor.
func buildSIF(t *testing.T, env []string) string {
	t.Helper()
	if p := os.Getenv("SCV_TEST_PROBE_SIF"); p != "" {
		return p // made by the parent test, which runs this one unprivileged
	}
	return buildImage(t, env, "probe", nil)
}

// buildImage makes a SIF holding the static program ./testdata/<prog> at /bin/<prog>;
// extra, when given, adds to the root file system before it is squashed.
func buildImage(t testing.TB, env []string, prog string, extra func(rootfs string)) string {
	t.Helper()
	testenv.Need(t, "mksquashfs", "unsquashfs")
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(rootfs, "bin", prog), "./testdata/"+prog)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	if extra != nil {
		extra(rootfs)
	}
	sq := filepath.Join(dir, "root.squashfs")
	if out, err := exec.Command("mksquashfs", rootfs, sq, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	sqf, err := os.Open(sq)
	if err != nil {
		t.Fatal(err)
	}
	defer sqf.Close()
	part, err := sif.NewDescriptorInput(sif.DataPartition, sqf, sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"))
	if err != nil {
		t.Fatal(err)
	}
	// As internal/sif writes it: the image's runtime config (v1.Config).
	cfg, _ := json.Marshal(map[string]any{"Env": env})
	meta, err := sif.NewDescriptorInput(sif.DataGenericJSON, bytes.NewReader(cfg), sif.OptObjectName(scvsif.DescOCIConfig))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "probe.sif")
	f, err := sif.CreateContainerAtPath(out, sif.OptCreateWithDescriptors(part, meta))
	if err != nil {
		t.Fatal(err)
	}
	f.UnloadContainer()
	return out
}

func TestBuiltinRunsChrootedWithBinds(t *testing.T) {
	if os.Getuid() != 0 {
		t.Log("not root: the builtin runtime uses a user namespace")
	}
	img := buildSIF(t, []string{"PATH=/bin", "IMAGE_VAR=from-image", "OVERRIDE=image"})
	data := filepath.Join(t.TempDir(), "my data")
	scratch := filepath.Join(t.TempDir(), "scratch dir")
	output := filepath.Join(t.TempDir(), "job dir", "outputs")
	for _, d := range []string{data, scratch, output} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "in.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOST_SECRET", "must-not-leak")
	rt := NewBuiltin(BuiltinOptions{Dir: t.TempDir(), Log: nopLog})
	ctx := context.Background()

	// Parallel Prepare unpacks once and nobody sees a partial tree.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- rt.Prepare(ctx, img) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	cmd, err := rt.Command(ctx, Spec{SIF: img, Command: []string{"probe", "arg one"}, DataRoot: data, Scratch: scratch,
		Output: output, Env: map[string]string{"OVERRIDE": "spec", "SCV_WORKER": "0"}, GPU: "3"})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\nstderr: %s", err, stderr.String())
	}
	var got struct {
		Cwd                                          string
		Env, Args                                    []string
		Data                                         string
		WriteData, WriteRoot, WriteScratch, WriteTmp string
		WriteOut                                     string
		Proc, Dev                                    bool
	}
	dec := json.NewDecoder(&stdout)
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("probe output: %v", err)
	}
	b, _ := json.Marshal(raw)
	json.Unmarshal(b, &got)
	got.WriteData, _ = raw["write_data"].(string)
	got.WriteRoot, _ = raw["write_root"].(string)
	got.WriteScratch, _ = raw["write_scratch"].(string)
	got.WriteTmp, _ = raw["write_tmp"].(string)
	got.WriteOut, _ = raw["write_out"].(string)

	checks := []struct {
		name string
		ok   bool
	}{
		{"cwd is /scratch", got.Cwd == "/scratch"},
		{"args passed", len(got.Args) == 1 && got.Args[0] == "arg one"},
		{"data readable", got.Data == "hello"},
		{"data read-only", strings.Contains(got.WriteData, "read-only")},
		{"rootfs read-only", strings.Contains(got.WriteRoot, "read-only")},
		{"scratch writable", got.WriteScratch == "ok"},
		{"tmp writable", got.WriteTmp == "ok"},
		{"/out writable", got.WriteOut == "ok"},
		{"/proc and /dev", got.Proc && got.Dev},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: probe saw %s", c.name, b)
		}
	}
	env := strings.Join(got.Env, "\n")
	for _, want := range []string{"IMAGE_VAR=from-image", "OVERRIDE=spec", "SCV_WORKER=0", "CUDA_VISIBLE_DEVICES=3", "PATH=/bin"} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	for _, bad := range []string{"HOST_SECRET", "OVERRIDE=image", childSpecEnv} {
		if strings.Contains(env, bad) {
			t.Errorf("env leaks %s:\n%s", bad, env)
		}
	}
	if b, err := os.ReadFile(filepath.Join(scratch, "out.txt")); err != nil || string(b) != "x" {
		t.Errorf("scratch write not visible on the host: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(output, "result.txt")); err != nil || string(b) != "x" {
		t.Errorf("/out write not visible in the host output directory: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(data, "new.txt")); err == nil {
		t.Error("the model wrote into the data directory")
	}

	// Without an output directory nothing is bound at /out: the image's empty,
	// read-only mount point.
	cmd, err = rt.Command(ctx, Spec{SIF: img, Command: []string{"probe"}, DataRoot: data, Scratch: scratch})
	if err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run without output: %v\nstderr: %s", err, stderr.String())
	}
	raw = nil
	if err := json.NewDecoder(&stdout).Decode(&raw); err != nil {
		t.Fatalf("probe output: %v", err)
	}
	if w, _ := raw["write_out"].(string); !strings.Contains(w, "read-only") {
		t.Errorf("/out without an output directory: write gave %q, want read-only", w)
	}
}

// TestAddMountPoints: a tree unpacked by an older scv-hpc gains the mount points it
// lacks; what the image holds (a directory, a symlink) is left alone.
func TestAddMountPoints(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"data", "scratch", "proc"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/nowhere", filepath.Join(root, "dev")); err != nil {
		t.Fatal(err)
	}
	if created, err := addMountPoints(root); err != nil || !created {
		t.Fatalf("created %v, %v", created, err)
	}
	for _, d := range []string{"out", "tmp"} {
		if fi, err := os.Lstat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Errorf("/%s not created: %v", d, err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, "dev")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the image's /dev symlink was replaced: %v", err)
	}
	if created, err := addMountPoints(root); err != nil || created {
		t.Errorf("second call: created %v, %v", created, err)
	}
}

func TestBuiltinErrors(t *testing.T) {
	img := buildSIF(t, nil)
	rt := NewBuiltin(BuiltinOptions{Dir: t.TempDir(), Log: nopLog})
	dir := t.TempDir()
	cmd, err := rt.Command(context.Background(), Spec{SIF: img, Command: []string{"no-such-model"}, DataRoot: dir, Scratch: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no-such-model: command not found in the image") {
		t.Errorf("missing command: err %v, output %q", err, out)
	}
	notSIF := filepath.Join(dir, "x.sif")
	os.WriteFile(notSIF, []byte("not a sif"), 0o644)
	if err := rt.Prepare(context.Background(), notSIF); err == nil || !strings.Contains(err.Error(), "not a valid SIF") {
		t.Errorf("Prepare(garbage) = %v", err)
	}
}

// TestBuiltinUnprivileged runs TestBuiltinRunsChrootedWithBinds and
// TestBuiltinHostileModel again as an unprivileged user (nobody): the builtin runtime
// then needs a user namespace.
func TestBuiltinUnprivileged(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("already unprivileged: TestBuiltinRunsChrootedWithBinds covered it")
	}
	testenv.Need(t, "setpriv")
	img := buildSIF(t, []string{"PATH=/bin", "IMAGE_VAR=from-image", "OVERRIDE=image"})
	dir, err := os.MkdirTemp("", "scv-hpc-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, _ := os.Executable()
	bin := filepath.Join(dir, "runtime.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	sifCopy := filepath.Join(dir, "probe.sif")
	s, _ := os.ReadFile(img)
	escCopy := filepath.Join(dir, "escape.sif")
	e, _ := os.ReadFile(buildEscapeImage(t, false))
	if os.WriteFile(bin, b, 0o755) != nil || os.WriteFile(sifCopy, s, 0o644) != nil || os.WriteFile(escCopy, e, 0o644) != nil {
		t.Fatal("copy test binary")
	}
	tmp := filepath.Join(dir, "tmp")
	os.MkdirAll(tmp, 0o777)
	os.Chmod(dir, 0o755)
	os.Chmod(tmp, 0o1777)
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin,
		"-test.run=^(TestBuiltinRunsChrootedWithBinds|TestBuiltinHostileModel)$", "-test.v")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TMPDIR=" + tmp, "HOME=" + tmp,
		"SCV_TEST_PROBE_SIF=" + sifCopy, "SCV_TEST_ESCAPE_SIF=" + escCopy}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestBuiltinRunsChrootedWithBinds") ||
		!strings.Contains(string(out), "--- PASS: TestBuiltinHostileModel") {
		t.Fatalf("unprivileged run: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "user namespace") {
		t.Errorf("the unprivileged run did not take the user-namespace path:\n%s", out)
	}
}

// BenchmarkBuiltinStart: one model process started and ended (namespaces, mounts,
// pivot, init, exec of a static program), the tree already unpacked.
func BenchmarkBuiltinStart(b *testing.B) {
	img := buildImage(b, []string{"PATH=/bin"}, "probe", nil)
	rt := NewBuiltin(BuiltinOptions{Dir: b.TempDir(), Log: nopLog})
	data, scratch := b.TempDir(), b.TempDir()
	if err := rt.Prepare(context.Background(), img); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		cmd, err := rt.Command(context.Background(), Spec{SIF: img, Command: []string{"probe"}, DataRoot: data, Scratch: scratch})
		if err != nil {
			b.Fatal(err)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
}
