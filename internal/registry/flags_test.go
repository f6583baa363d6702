package registry

import (
	"slices"
	"testing"

	"github.com/spf13/pflag"
)

func TestAddFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		platform string
		insecure []string
	}{
		{nil, DefaultPlatform, nil},
		{[]string{"--platform=linux/arm64", "--insecure-registry=a:5000,b", "--insecure-registry=c"}, "linux/arm64", []string{"a:5000", "b", "c"}},
	} {
		var o Options
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		if o.Platform != tc.platform || !slices.Equal(o.Insecure, tc.insecure) {
			t.Errorf("%v: platform %q insecure %v", tc.args, o.Platform, o.Insecure)
		}
	}
}
