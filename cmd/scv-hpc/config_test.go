package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/doctor"
	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/sif"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

// TestSiteConfigCache: the site config's cache: is the cache of every command (stage,
// pull, cache ls, predict --offline, doctor), and a flag or the environment overrides it.
func TestSiteConfigCache(t *testing.T) {
	lay := facesLayout(t)
	model := "oci-layout:" + lay + ":faces"
	dir := t.TempDir()
	siteCache := filepath.Join(dir, "site cache")
	site := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(site, []byte("cache: "+siteCache+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	env := []string{"SCV_HPC_CONFIG=" + site, "HOME=" + home, "XDG_CACHE_HOME=", "SCV_HPC_CACHE=", "TMPDIR=" + t.TempDir()}
	run := func(t *testing.T, env []string, args ...string) string {
		t.Helper()
		code, stdout, stderr := scv(t, env, append([]string{"--log-format", "json"}, args...)...)
		if code != 0 && code != 3 && !(code == 1 && args[0] == "doctor") { // doctor: 1 when a check fails
			t.Fatalf("scv-hpc %s: exit %d\n%s\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
		return stdout
	}
	ls := func(t *testing.T, env []string, args ...string) []cache.Entry {
		var es []cache.Entry
		out := run(t, env, append(args, "cache", "ls", "--json")...)
		if err := json.Unmarshal([]byte(out), &es); err != nil {
			t.Fatalf("cache ls --json: %v\n%s", err, out)
		}
		return es
	}

	if out := run(t, env, "stage", model); !strings.Contains(out, siteCache) {
		t.Errorf("stage did not use the site cache %s:\n%s", siteCache, out)
	}
	if out := run(t, env, "pull", model); !strings.Contains(out, "cached") || !strings.Contains(out, siteCache) {
		t.Errorf("pull did not use the site cache:\n%s", out)
	}
	if es := ls(t, env); len(es) != 1 || !strings.HasPrefix(es[0].Path, siteCache) {
		t.Errorf("cache ls: %+v, want the one entry of %s", es, siteCache)
	}
	data, _ := dataset(t)
	out := filepath.Join(t.TempDir(), "run")
	run(t, env, "--offline", "predict", model, "--data", data, "--out", out, "--runtime", "builtin", "--gpus", "none")
	if j, err := job.Load(out); err != nil || !strings.HasPrefix(j.SIF, siteCache) || j.Run.CacheDir != siteCache {
		t.Errorf("predict --offline: job %+v %v, want the SIF and cache of %s", j, err, siteCache)
	}
	var checks []doctor.Check
	json.Unmarshal([]byte(run(t, env, "doctor", "--json")), &checks)
	found := map[string]string{}
	for _, c := range checks {
		found[c.Name] = c.Detail
	}
	if d := found["setting cache"]; !strings.Contains(d, siteCache) || !strings.Contains(d, "site config "+site) {
		t.Errorf("doctor's cache setting: %q", d)
	}
	if d := found["cache directory"]; !strings.Contains(d, siteCache) {
		t.Errorf("doctor checked another cache: %q", d)
	}

	// A flag, then the environment, win over the site config.
	flagCache, envCache := filepath.Join(dir, "flag"), filepath.Join(dir, "env")
	if es := ls(t, env, "--cache", flagCache); len(es) != 0 {
		t.Errorf("--cache %s lists %+v", flagCache, es)
	}
	envOver := append(append([]string{}, env...), "SCV_HPC_CACHE="+envCache)
	if out := run(t, envOver, "pull", model); !strings.Contains(out, "converted") || !strings.Contains(out, envCache) {
		t.Errorf("SCV_HPC_CACHE did not win over the site config:\n%s", out)
	}
	if es := ls(t, envOver, "--cache", flagCache); len(es) != 0 {
		t.Errorf("--cache did not win over SCV_HPC_CACHE: %+v", es)
	}
	json.Unmarshal([]byte(run(t, envOver, "doctor", "--json")), &checks)
	for _, c := range checks {
		if c.Name == "setting cache" && !strings.Contains(c.Detail, "env SCV_HPC_CACHE") {
			t.Errorf("doctor with SCV_HPC_CACHE: %q", c.Detail)
		}
	}
}

// TestConversionSettings: compression and the layer cache come from the resolved
// config (pull's flag > SCV_HPC_COMPRESSION > the site config's compression: >
// gzip:3), reach the SIF and the blob store, and a bad value is a usage error before anything is fetched.
func TestConversionSettings(t *testing.T) {
	testenv.Need(t, "unsquashfs")
	reg := testenv.StartRegistryStoppable(t)
	model := reg.Host + "/scivision/faces:1.0"
	testenv.Push(t, fakeFaces(t, "amd64", 0), model)
	dir := t.TempDir()
	site := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(site, []byte("compression: xz\nlayer_cache: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{"SCV_HPC_CONFIG=" + site, "SCV_HPC_COMPRESSION=", "SCV_HPC_LAYER_CACHE=", "TMPDIR=" + t.TempDir()}
	for _, tc := range []struct {
		name  string
		env   []string
		flags []string
		want  string
		blobs bool // layer blobs kept in the cache
	}{
		{"site config", nil, nil, "xz", false},
		{"env over site", []string{"SCV_HPC_COMPRESSION=lz4", "SCV_HPC_LAYER_CACHE=true"}, nil, "lz4", true},
		{"flag over env", []string{"SCV_HPC_COMPRESSION=lz4"}, []string{"--compression", "gzip:2"}, "gzip", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			env := append(append([]string{}, base...), tc.env...)
			args := append([]string{"--log-format", "json", "--cache", cacheDir, "pull", model}, tc.flags...)
			if code, stdout, stderr := scv(t, env, args...); code != 0 {
				t.Fatalf("pull: exit %d\n%s\n%s", code, stdout, stderr)
			}
			sifs, _ := filepath.Glob(filepath.Join(cacheDir, "sif", "sha256", "*.sif"))
			if len(sifs) != 1 {
				t.Fatalf("SIFs in the cache: %q", sifs)
			}
			off, _, err := sif.PrimaryPartition(sifs[0])
			if err != nil {
				t.Fatal(err)
			}
			stat, err := exec.Command("unsquashfs", "-s", "-o", fmt.Sprint(off), sifs[0]).CombinedOutput()
			if err != nil || !strings.Contains(string(stat), "Compression "+tc.want) {
				t.Errorf("unsquashfs -s (%v), want compression %s:\n%s", err, tc.want, stat)
			}
			blobs, _ := filepath.Glob(filepath.Join(cacheDir, "blobs", "sha256", "*"))
			if (len(blobs) > 0) != tc.blobs {
				t.Errorf("layer blobs in the cache: %d, want kept=%v", len(blobs), tc.blobs)
			}
			if !tc.blobs {
				return
			}
			// cache gc keeps a blob used just now (default 168h) unless the blob max age,
			// here from the environment, says otherwise.
			for _, age := range []struct {
				env    string
				unused bool
			}{{"SCV_HPC_BLOB_MAX_AGE=", false}, {"SCV_HPC_BLOB_MAX_AGE=-1s", true}} {
				_, out, stderr := scv(t, append(append([]string{}, env...), age.env), "--cache", cacheDir, "cache", "gc", "--dry-run")
				if got := strings.Contains(out, "unused-blob"); got != age.unused {
					t.Errorf("cache gc --dry-run with %s: unused blob listed %v, want %v\n%s%s", age.env, got, age.unused, out, stderr)
				}
			}
		})
	}
	for _, bad := range [][]string{
		{"--compression", "brotli"},
		{"--compression", "gzip:99"},
	} {
		code, _, stderr := scv(t, base, append([]string{"--cache", t.TempDir(), "pull", model}, bad...)...)
		if code != 2 || !strings.Contains(stderr, "compression") {
			t.Errorf("pull %q: exit %d, want 2 naming compression:\n%s", bad, code, stderr)
		}
	}
	if code, _, stderr := scv(t, append(append([]string{}, base...), "SCV_HPC_COMPRESSION=brotli"), "--cache", t.TempDir(), "pull", model); code == 0 || !strings.Contains(stderr, "brotli") {
		t.Errorf("SCV_HPC_COMPRESSION=brotli: exit %d\n%s", code, stderr)
	}
}
