package config

import (
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestFlagsParsed: the flags bound by AddFlags, AddConversionFlags and AddGCFlags
// reach Resolve as given, and only the ones given count as flags.
func TestFlagsParsed(t *testing.T) {
	var f Flags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs)
	f.AddConversionFlags(fs)
	f.AddGCFlags(fs)
	err := fs.Parse([]string{"--cache=/c", "--offline", "--log-level=debug", "--log-format=json", "--catalog=a.yaml,b.yaml",
		"--tmpdir=/t", "--no-layer-cache", "--compression=zstd", "--blob-max-age=1h"})
	if err != nil {
		t.Fatal(err)
	}
	f.Set = fs.Changed
	site := writeSite(t, "cache: /site/cache\n")
	c, err := Resolve(f, envOf(map[string]string{EnvConfig: site, EnvCache: "/env/cache"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache != "/c" || !c.Offline || c.LogLevel != "debug" || c.LogFormat != "json" || len(c.Catalogs) != 2 || c.TmpDir != "/t" ||
		c.LayerCache || c.Compression != "zstd" || c.BlobMaxAge != time.Hour {
		t.Errorf("config %+v", c)
	}
	for _, st := range c.Settings() {
		if st.Name == "cache" && st.Source != "flag --cache" {
			t.Errorf("cache from %s, want the flag", st.Source)
		}
	}
	var none Flags
	fs = pflag.NewFlagSet("t", pflag.ContinueOnError)
	none.AddFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	none.Set = fs.Changed
	if c, err := Resolve(none, envOf(map[string]string{EnvConfig: site})); err != nil || c.Cache != "/site/cache" || c.LogLevel != "info" || c.LogFormat != "auto" {
		t.Errorf("no flags: %+v, %v; want the site's cache and the default log settings", c, err)
	}
}
