package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestHeldBasicAuthLeavesNoCredentials: scv-hpc pull from a registry behind basic auth
// reads the credentials from $DOCKER_CONFIG, as docker login writes them, and writes
// them nowhere: not in the cache, HOME, TMPDIR or its output. Wrong credentials fail
// with a hint to docker login, again without echoing them.
func TestHeldBasicAuthLeavesNoCredentials(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs")
	const user, pass = "alice", "Zq9-held-s3cret"
	var guarded atomic.Bool
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); guarded.Load() && (!ok || u != user || p != pass) {
			w.Header().Set("WWW-Authenticate", `Basic realm="held"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"login"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := host + "/private/model:1"
	img := testenv.Image(t, []imagebuild.File{
		{Path: "/usr/local/bin/model", Mode: 0o755, Data: []byte("#!/bin/sh\necho '{\"scv\":1,\"ready\":true}'\n")},
	}, imagebuild.Config{Entrypoint: []string{"/usr/local/bin/model"}, Labels: map[string]string{"org.scivision.predict": "/usr/local/bin/model"}})
	if err := imagebuild.Push(t.Context(), img, ref, registry.Options{}); err != nil {
		t.Fatal(err)
	}
	guarded.Store(true)

	secrets := []string{pass, base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
	for _, tt := range []struct {
		name, creds string
		code        int
		want        string
	}{
		{"right credentials", user + ":" + pass, 0, "converted"},
		{"wrong password", user + ":not-" + pass, 1, "docker login " + host},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dockerCfg, home, tmp := t.TempDir(), t.TempDir(), t.TempDir()
			cache := filepath.Join(t.TempDir(), "cache")
			cfg := `{"auths":{"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(tt.creds)) + `"}}}`
			if err := os.WriteFile(filepath.Join(dockerCfg, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), testenv.Binary(t), "--cache", cache, "--log-format", "json", "--log-level", "debug", "pull", ref)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + tmp, "DOCKER_CONFIG=" + dockerCfg}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			out := stdout.String() + stderr.String()
			if code := cmd.ProcessState.ExitCode(); (code == 0) != (tt.code == 0) || !strings.Contains(out, tt.want) {
				t.Fatalf("pull exit %d, want %d with %q:\n%s", code, tt.code, tt.want, out)
			}
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("the output holds the credentials (%q):\n%s", s, out)
				}
			}
			for _, dir := range []string{cache, home, tmp} {
				filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
					if err != nil || !d.Type().IsRegular() {
						return nil
					}
					b, err := os.ReadFile(p)
					if err != nil {
						t.Errorf("read %s: %v", p, err)
						return nil
					}
					for _, s := range secrets {
						if bytes.Contains(b, []byte(s)) {
							t.Errorf("%s holds the credentials (%q)", p, s)
						}
					}
					return nil
				})
			}
			if b, _ := os.ReadFile(filepath.Join(dockerCfg, "config.json")); string(b) != cfg {
				t.Errorf("the docker config was rewritten: %s", b)
			}
		})
	}
}

// snapshotTree maps every path under dir to its type, size and modification time.
func snapshotTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		m[p] = fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestHeldReadOnlyCacheOffline: a cache filled by pull, then mounted read-only (as a
// compute node sees a shared cache), serves pull --offline, cache ls, cache verify and
// a whole predict --offline with the builtin runtime, and nothing in it changes.
func TestHeldReadOnlyCacheOffline(t *testing.T) {
	testenv.Need(t, "mksquashfs", "unsquashfs", "unshare", "mount")
	if os.Geteuid() != 0 {
		t.Skip("needs root for a read-only bind mount in a private mount namespace, and for the builtin runtime")
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/held/model:1"
	model := testenv.BuildProgram(t, "./internal/runner/testdata/testmodel")
	img := testenv.Image(t, []imagebuild.File{{Path: "/usr/local/bin/model", Mode: 0o755, Src: model}},
		imagebuild.Config{Entrypoint: []string{"/usr/local/bin/model"}, Labels: map[string]string{"org.scivision.predict": "/usr/local/bin/model"}})
	if err := imagebuild.Push(t.Context(), img, ref, registry.Options{}); err != nil {
		t.Fatal(err)
	}
	bin, home := testenv.Binary(t), t.TempDir()
	cache := filepath.Join(t.TempDir(), "cache")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + t.TempDir(), "DOCKER_CONFIG=" + home}
	pull := exec.CommandContext(t.Context(), bin, "--cache", cache, "pull", ref)
	pull.Env = env
	if out, err := pull.CombinedOutput(); err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	data, out := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "out")
	names := []string{"a.png", "b.png", "c d.png"}
	os.MkdirAll(data, 0o755)
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(data, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshotTree(t, cache)

	script := `set -e
mount --bind -o ro "$C" "$C"
"$BIN" --cache "$C" pull --offline "$REF"
"$BIN" --cache "$C" cache ls
"$BIN" --cache "$C" cache verify
"$BIN" --cache "$C" predict --offline "$REF" --data "$D" --out "$O" --runtime builtin --gpus none --workers 1
if touch "$C/probe" 2>/dev/null; then echo "the cache is writable"; exit 9; fi`
	cmd := exec.CommandContext(t.Context(), "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	cmd.Env = append(env, "C="+cache, "BIN="+bin, "REF="+ref, "D="+data, "O="+out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("offline use of a read-only cache: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "3 inputs") {
		t.Errorf("predict summary lacks \"3 inputs\":\n%s", b)
	}
	var lines []string
	files, _ := filepath.Glob(filepath.Join(out, "results", "*.jsonl"))
	for _, f := range files {
		c, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSpace(string(c)), "\n")...)
	}
	if len(lines) != len(names) {
		t.Errorf("%d result lines for %d inputs: %q", len(lines), len(names), lines)
	}
	for _, l := range lines {
		if !strings.Contains(l, `"ok":true`) {
			t.Errorf("result %s", l)
		}
	}
	if after := snapshotTree(t, cache); !reflect.DeepEqual(before, after) {
		t.Errorf("the read-only cache changed:\nbefore %v\nafter  %v", before, after)
	}
}

// TestHeldGCAndRmDuringPull: cache rm of the image's digest while a pull converts
// (its squashfs packer running) removes nothing, and cache gc run over and over from then
// until the pull ends, each a process of its own, leaves the conversion alone: the
// pull succeeds and the entry verifies.
func TestHeldGCAndRmDuringPull(t *testing.T) {
	testenv.Need(t, "tar2sqfs", "unsquashfs")
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/held/big:1"
	weights := make([]byte, 48<<20) // incompressible, so the packer runs long enough
	rand.Read(weights)
	img := testenv.Image(t, []imagebuild.File{{Path: "/weights.bin", Mode: 0o644, Data: weights}},
		imagebuild.Config{Labels: map[string]string{"org.scivision.predict": "/model"}})
	if err := imagebuild.Push(t.Context(), img, ref, registry.Options{}); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	bin, home := testenv.Binary(t), t.TempDir()
	cache := filepath.Join(t.TempDir(), "cache")
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "TMPDIR=" + t.TempDir(), "DOCKER_CONFIG=" + home}
	run := func(args ...string) (string, int) {
		cmd := exec.CommandContext(t.Context(), bin, append([]string{"--cache", cache}, args...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}

	pull := exec.CommandContext(t.Context(), bin, "--cache", cache, "pull", ref)
	pull.Env = env
	var pullOut bytes.Buffer
	pull.Stdout, pull.Stderr = &pullOut, &pullOut
	if err := pull.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !packing(pull.Process.Pid, cache) {
		if time.Now().After(deadline) {
			pull.Process.Kill()
			t.Fatalf("the pull never ran its squashfs packer:\n%s", pullOut.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	// rm while the packer runs: there is no entry yet, and the conversion is not one.
	rmOut, rmCode := run("cache", "rm", d.String())
	// gc over and over until the pull ends: through the conversion, the copy into the
	// cache and the commit. (Not --all-unreferenced: an entry committed a moment before
	// its ref is set is fair game for it.)
	waited := make(chan error, 1)
	go func() { waited <- pull.Wait() }()
	var gcOut string
	var gcCode, rounds int
	var pullErr error
	for done := false; !done && gcCode == 0; rounds++ {
		gcOut, gcCode = run("cache", "gc")
		select {
		case pullErr = <-waited:
			done = true
		default:
		}
	}
	t.Logf("%d rounds of gc during the pull; rm (exit %d): %s", rounds, rmCode, strings.TrimSpace(rmOut))
	if gcCode != 0 {
		pullErr = <-waited
	}
	if pullErr != nil {
		t.Fatalf("pull raced by gc and rm: %v\n%s\ngc (exit %d): %s\nrm (exit %d): %s", pullErr, pullOut.String(), gcCode, gcOut, rmCode, rmOut)
	}
	if gcCode != 0 {
		t.Errorf("cache gc during a pull: exit %d\n%s", gcCode, gcOut)
	}
	if rmCode == 0 {
		t.Errorf("cache rm during a pull removed the entry being converted:\n%s", rmOut)
	}
	if out, code := run("cache", "verify"); code != 0 || !strings.Contains(out, d.String()) {
		t.Errorf("cache verify after the pull: exit %d\n%s", code, out)
	}
	if out, code := run("cache", "path", ref); code != 0 || !strings.HasSuffix(strings.TrimSpace(out), strings.TrimPrefix(d.String(), "sha256:")+".sif") {
		t.Errorf("cache path after the pull: exit %d: %s", code, out)
	}
}
