package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sylabs/sif/v2/pkg/sif"
)

// testDigest returns a well-formed digest derived from name.
func testDigest(name string) string {
	s := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(s[:])
}

// writeSIF creates a small real SIF at path: one generic data object holding payload,
// and the provenance descriptors given (as the conversion writes them).
func writeSIF(path string, payload []byte, provs ...Provenance) error {
	di, err := sif.NewDescriptorInput(sif.DataGeneric, bytes.NewReader(payload), sif.OptObjectName("payload.bin"))
	if err != nil {
		return err
	}
	dis := []sif.DescriptorInput{di}
	for _, p := range provs {
		b, _ := json.Marshal(p)
		pi, err := sif.NewDescriptorInput(sif.DataGenericJSON, bytes.NewReader(b), sif.OptObjectName(provenanceName))
		if err != nil {
			return err
		}
		dis = append(dis, pi)
	}
	f, err := sif.CreateContainerAtPath(path, sif.OptCreateDeterministic(), sif.OptCreateWithDescriptors(dis...))
	if err != nil {
		return err
	}
	return f.UnloadContainer()
}

// testSource is the image reference the test entry of name was "converted" from.
func testSource(name string) string { return "ghcr.io/x/" + name + ":1" }

// sifBuilder returns a BuildFunc writing a SIF with payload and meta fields filled, as
// fetch does: the SIF records that it is image testDigest(payload) converted from
// testSource(payload), and the metadata the refs it was committed for.
func sifBuilder(payload string) BuildFunc {
	return func(ctx context.Context, tmp string) (*Meta, error) {
		prov := Provenance{Ref: testSource(payload), Digest: testDigest(payload)}
		if err := writeSIF(tmp, []byte(payload), prov); err != nil {
			return nil, err
		}
		return &Meta{Source: prov.Ref, Refs: []string{prov.Ref, payload + "@2", payload}, Platform: "linux/amd64", Env: []string{"A=1"},
			Labels: map[string]string{"org.scivision.predict": "predict"}, Config: json.RawMessage(`{"architecture":"amd64"}`)}, nil
	}
}

// commitTest commits an entry made from name and returns its digest and path.
func commitTest(t *testing.T, c *Cache, name string) (string, string) {
	t.Helper()
	d := testDigest(name)
	p, _, built, err := c.Commit(context.Background(), d, sifBuilder(name))
	if err != nil || !built {
		t.Fatalf("commit %s: built=%v err=%v", name, built, err)
	}
	return d, p
}

// snapshot records every path under dir with its size and mtime.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d %d", p, info.Mode(), info.Size(), info.ModTime().UnixNano()))
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// helperCmd re-executes the test binary as a helper process in mode, with env.
func helperCmd(mode string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v=false")
	cmd.Env = append(os.Environ(), append([]string{"SCV_CACHE_HELPER=" + mode}, env...)...)
	return cmd
}

// TestHelperProcess is not a test: it is the body of the helper processes the tests
// start (committers, a committer killed mid-build, read-only and disk-full probes).
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("SCV_CACHE_HELPER")
	if mode == "" {
		t.Skip("helper process only")
	}
	c := Open(os.Getenv("CACHE_DIR"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	switch mode {
	case "commit":
		err = helperCommit(ctx, c)
	case "hang":
		err = helperHang(ctx, c)
	case "readonly":
		err = helperReadOnly(ctx, c)
	case "enospc":
		err = helperENOSPC(ctx, c)
	default:
		err = fmt.Errorf("unknown helper mode %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperCommit commits DIGEST; the build records itself in BUILDS and sleeps a while
// so that the other committers pile up on the lock. Prints the SIF path and "built".
func helperCommit(ctx context.Context, c *Cache) error {
	delay, _ := strconv.Atoi(os.Getenv("BUILD_MS"))
	p, _, built, err := c.Commit(ctx, os.Getenv("DIGEST"), func(ctx context.Context, tmp string) (*Meta, error) {
		if err := appendLine(os.Getenv("BUILDS"), strconv.Itoa(os.Getpid())); err != nil {
			return nil, err
		}
		time.Sleep(time.Duration(delay) * time.Millisecond)
		return sifBuilder("shared")(ctx, tmp)
	})
	if err != nil {
		return err
	}
	fmt.Printf("%s %v\n", p, built)
	return nil
}

// helperHang starts a commit whose build writes half a SIF, says so in READY, and
// never returns: the test kills it with SIGKILL.
func helperHang(ctx context.Context, c *Cache) error {
	_, _, _, err := c.Commit(ctx, os.Getenv("DIGEST"), func(ctx context.Context, tmp string) (*Meta, error) {
		if err := os.WriteFile(tmp, bytes.Repeat([]byte("half"), 4096), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(os.Getenv("READY"), []byte(tmp), 0o644); err != nil {
			return nil, err
		}
		select {}
	})
	return err
}

// helperReadOnly bind-mounts CACHE_DIR read-only over itself (in its own mount
// namespace), runs every read operation, and checks that a write fails clearly.
func helperReadOnly(ctx context.Context, c *Cache) error {
	for _, args := range [][]string{{"--bind", c.Dir, c.Dir}, {"-o", "remount,ro,bind", c.Dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("mount %v: %v: %s", args, err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "probe"), nil, 0o644); !errors.Is(err, fs.ErrPermission) && !strings.Contains(fmt.Sprint(err), "read-only") {
		return fmt.Errorf("the bind mount is not read-only: %v", err)
	}
	if _, _, err := c.Lookup(os.Getenv("DIGEST")); err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	if d, err := c.ResolveRef("mounted"); err != nil || d != os.Getenv("DIGEST") {
		return fmt.Errorf("resolve: %q %v", d, err)
	}
	if ents, err := c.List(); err != nil || len(ents) != 1 {
		return fmt.Errorf("list: %d entries, %v", len(ents), err)
	}
	res, err := c.Verify(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, r := range res {
		if r.Problem() {
			return fmt.Errorf("verify found %+v", r)
		}
	}
	if _, _, err := c.Lookup(testDigest("absent")); !errors.Is(err, ErrNotCached) {
		return fmt.Errorf("lookup of an absent digest: %v", err)
	}
	// Exporting reads only; re-importing what the cache has writes nothing.
	var bundle bytes.Buffer
	if err := c.Export(ctx, &bundle, nil); err != nil {
		return fmt.Errorf("export from a read-only cache: %w", err)
	}
	if rep, err := c.Import(ctx, &bundle, ImportOptions{}); err != nil || len(rep.Present) != 1 {
		return fmt.Errorf("re-import into a read-only cache: %+v %w", rep, err)
	}
	// A new entry cannot be imported, and the error blames the cache, not the bundle.
	other, err := os.Open(os.Getenv("BUNDLE"))
	if err != nil {
		return err
	}
	defer other.Close()
	if _, err := c.Import(ctx, other, ImportOptions{}); err == nil || errors.Is(err, ErrBadBundle) || !strings.Contains(err.Error(), "read-only") {
		return fmt.Errorf("import of a new entry into a read-only cache: %v", err)
	}
	_, _, _, err = c.Commit(ctx, testDigest("new"), sifBuilder("new"))
	if err == nil || !strings.Contains(err.Error(), "read-only") {
		return fmt.Errorf("commit into a read-only cache: want a read-only error, got %v", err)
	}
	fmt.Println(err)
	return nil
}

// helperENOSPC mounts a 1 MiB tmpfs on CACHE_DIR and commits a build that writes
// more than fits.
func helperENOSPC(ctx context.Context, c *Cache) error {
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", c.Dir).CombinedOutput(); err != nil {
		return fmt.Errorf("mount tmpfs: %v: %s", err, out)
	}
	_, _, _, err := c.Commit(ctx, os.Getenv("DIGEST"), func(ctx context.Context, tmp string) (*Meta, error) {
		return nil, writeSIF(tmp, bytes.Repeat([]byte{7}, 2<<20))
	})
	if err == nil {
		return errors.New("commit of 2 MiB into 1 MiB succeeded")
	}
	left, _ := readDirNames(c.tmpDir())
	fmt.Printf("%s\nleft in tmp: %d\n", err, len(left))
	if _, _, lerr := c.Lookup(os.Getenv("DIGEST")); !errors.Is(lerr, ErrNotCached) {
		return fmt.Errorf("after a failed commit, lookup says %v", lerr)
	}
	return nil
}

func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// needRootNamespaces skips tests that need a private mount namespace (root only).
func needRootNamespaces(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private mount namespace (unshare -m)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
}
