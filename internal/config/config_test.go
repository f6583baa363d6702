package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeSite(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPrecedence: flags > environment > site config > defaults, for every layer, with
// the source of each value recorded.
func TestPrecedence(t *testing.T) {
	site := writeSite(t, "cache: /site/cache\ntmpdir: /site/tmp\n")
	for _, tc := range []struct {
		name      string
		flags     Flags
		env       map[string]string
		cache     string
		cacheFrom string
		tmp       string
	}{
		{"site config", Flags{}, map[string]string{EnvConfig: site}, "/site/cache", "site config " + site, "/site/tmp"},
		{"env over site", Flags{}, map[string]string{EnvConfig: site, EnvCache: "/env/cache", EnvTmpDir: "/env/tmp"}, "/env/cache", "env SCV_HPC_CACHE", "/env/tmp"},
		{"flag over env", Flags{Cache: "/flag/cache", Set: func(f string) bool { return f == "cache" }},
			map[string]string{EnvConfig: site, EnvCache: "/env/cache"}, "/flag/cache", "flag --cache", "/site/tmp"},
		{"defaults", Flags{}, map[string]string{EnvConfig: writeSite(t, ""), "XDG_CACHE_HOME": "/xdg"}, "/xdg/scv-hpc", "default ($XDG_CACHE_HOME/scv-hpc)", ""},
		{"empty env is unset", Flags{}, map[string]string{EnvConfig: site, EnvCache: ""}, "/site/cache", "site config " + site, "/site/tmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Resolve(tc.flags, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Cache != tc.cache || c.TmpDir != tc.tmp {
				t.Fatalf("cache %q tmpdir %q, want %q %q", c.Cache, c.TmpDir, tc.cache, tc.tmp)
			}
			if got := c.Settings()[0]; got != (Setting{"cache", tc.cache, tc.cacheFrom}) {
				t.Errorf("cache setting %+v, want from %q", got, tc.cacheFrom)
			}
		})
	}
}

func TestOfflineAndCatalogs(t *testing.T) {
	none := filepath.Join(t.TempDir(), "none.yaml")
	c, err := Resolve(Flags{Catalogs: []string{"a.yaml"}}, envOf(map[string]string{EnvConfig: writeSite(t, ""), EnvOffline: "yes", EnvCatalog: "b.yaml::c.yaml"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Offline || !reflect.DeepEqual(c.Catalogs, []string{"a.yaml", "b.yaml", "c.yaml"}) {
		t.Errorf("offline %v catalogs %q", c.Offline, c.Catalogs)
	}
	// --offline=false given on the command line beats SCV_HPC_OFFLINE=1.
	c, err = Resolve(Flags{Set: func(f string) bool { return f == "offline" }}, envOf(map[string]string{EnvConfig: writeSite(t, ""), EnvOffline: "1"}))
	if err != nil || c.Offline {
		t.Errorf("--offline=false over the environment: %v %v", c.Offline, err)
	}
	if _, err := Resolve(Flags{}, envOf(map[string]string{EnvConfig: writeSite(t, ""), EnvOffline: "maybe"})); err == nil {
		t.Error("SCV_HPC_OFFLINE=maybe accepted")
	}
	if _, err := Resolve(Flags{}, envOf(map[string]string{EnvConfig: none})); !errors.Is(err, ErrSiteConfig) {
		t.Errorf("missing SCV_HPC_CONFIG file: %v", err)
	}
}

func TestParseSite(t *testing.T) {
	s, err := ParseSite("x.yaml", []byte("cache: /c\ntemplate: /t\nscv_hpc: /b\nslurm:\n  partition: gpu\n  qos: high\n  sbatch_args: [\"--x=1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := s.SlurmDefaults()
	if o.Partition != "gpu" || o.QOS != "high" || o.Template != "/t" || o.Binary != "/b" || o.SignalSeconds != 120 || len(o.SbatchArgs) != 1 {
		t.Errorf("SlurmDefaults %+v", o)
	}
	for _, bad := range []string{"compression: brotli\n", "compression: gzip:99\n", "blob_max_age: week\n", "layer_cache: maybe\n", "slurm: [", "slurm:\n  max_parallel: -1\n", "cahce: /x\n", "slurm:\n  qso: x\n", "slurm:\n  gres: gpu:1\n  gpus_per_task: 1\n"} {
		if _, err := ParseSite("x.yaml", []byte(bad)); !errors.Is(err, ErrSiteConfig) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// TestConversionPrecedence: compression, layer cache and blob max age follow the same
// order (flags of pull/stage/cache gc > environment > site config > defaults), each
// with its source, and a bad value from any layer is refused.
func TestConversionPrecedence(t *testing.T) {
	site := writeSite(t, "compression: xz\nlayer_cache: false\nblob_max_age: 48h\n")
	empty := writeSite(t, "")
	given := func(names ...string) func(string) bool {
		return func(f string) bool {
			for _, n := range names {
				if f == n {
					return true
				}
			}
			return false
		}
	}
	for _, tc := range []struct {
		name     string
		flags    Flags
		env      map[string]string
		comp     string
		compFrom string
		layer    bool
		age      time.Duration
		ageFrom  string
	}{
		{"defaults", Flags{}, map[string]string{EnvConfig: empty}, "gzip:3", "default", true, 168 * time.Hour, "default"},
		{"site config", Flags{}, map[string]string{EnvConfig: site}, "xz", "site config " + site, false, 48 * time.Hour, "site config " + site},
		{"env over site", Flags{}, map[string]string{EnvConfig: site, EnvCompression: "zstd:5", EnvLayerCache: "yes", EnvBlobMaxAge: "1h"},
			"zstd:5", "env " + EnvCompression, true, time.Hour, "env " + EnvBlobMaxAge},
		{"flags over env", Flags{Compression: "lz4", NoLayerCache: true, BlobMaxAge: -1, Set: given("compression", "no-layer-cache", "blob-max-age")},
			map[string]string{EnvConfig: site, EnvCompression: "zstd", EnvLayerCache: "true", EnvBlobMaxAge: "1h"},
			"lz4", "flag --compression", false, -1, "flag --blob-max-age"},
		{"unset flags do not count", Flags{Compression: "lz4", NoLayerCache: true}, map[string]string{EnvConfig: site},
			"xz", "site config " + site, false, 48 * time.Hour, "site config " + site},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Resolve(tc.flags, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Compression != tc.comp || c.LayerCache != tc.layer || c.BlobMaxAge != tc.age {
				t.Fatalf("compression %q layer cache %v blob max age %v, want %q %v %v", c.Compression, c.LayerCache, c.BlobMaxAge, tc.comp, tc.layer, tc.age)
			}
			from := map[string]string{}
			for _, s := range c.Settings() {
				from[s.Name] = s.Source
			}
			if from["compression"] != tc.compFrom || from["blob max age"] != tc.ageFrom {
				t.Errorf("sources %q", from)
			}
		})
	}
	for _, env := range []map[string]string{
		{EnvConfig: empty, EnvCompression: "brotli"},
		{EnvConfig: empty, EnvLayerCache: "sometimes"},
		{EnvConfig: empty, EnvBlobMaxAge: "a week"},
	} {
		if _, err := Resolve(Flags{}, envOf(env)); err == nil {
			t.Errorf("%v accepted", env)
		}
	}
	if _, err := Resolve(Flags{Compression: "gzip:0", Set: given("compression")}, envOf(map[string]string{EnvConfig: empty})); err == nil {
		t.Error("--compression gzip:0 accepted")
	}
}
