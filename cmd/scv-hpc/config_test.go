package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/doctor"
	"github.com/scivision-hpc/scv-hpc/internal/job"
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
