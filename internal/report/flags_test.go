package report

import (
	"errors"
	"testing"

	"github.com/spf13/pflag"
)

func TestOptionsFromFlags(t *testing.T) {
	for _, tc := range []struct {
		args               []string
		samples, maxFailed int
		bad                bool
	}{
		{nil, DefaultSamples, DefaultMaxFailed, false},
		{[]string{"--samples=0", "--max-failed=0"}, -1, -1, false},
		{[]string{"--samples=7", "--max-failed=2"}, 7, 2, false},
		{[]string{"--samples=-1"}, 0, 0, true},
		{[]string{"--max-failed=-3"}, 0, 0, true},
	} {
		var o Options
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		o.AddFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		got, err := o.FromFlags()
		if tc.bad {
			if !errors.Is(err, ErrBadOption) {
				t.Errorf("%v: %v, want ErrBadOption", tc.args, err)
			}
			continue
		}
		if err != nil || got.Samples != tc.samples || got.MaxFailed != tc.maxFailed {
			t.Errorf("%v: %+v, %v; want samples %d, max failed %d", tc.args, got, err, tc.samples, tc.maxFailed)
		}
	}
}
