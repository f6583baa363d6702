package main

import (
	"bytes"
	"encoding/base64"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

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
