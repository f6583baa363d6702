package job

import (
	"errors"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestRunFlagsOverride(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want RunOptions // DefaultRunOptions().Apply(override)
		bad  bool
	}{
		{"no flag keeps the recorded options", nil, DefaultRunOptions(), false},
		{"each flag given overrides", []string{"--workers=3", "--gpus=0,1", "--runtime=builtin", "--item-timeout=1m",
			"--retries=0", "--load-timeout=1h", "--scratch=/s"},
			RunOptions{Workers: 3, GPUs: "0,1", Runtime: "builtin", ItemTimeout: Duration(time.Minute), Retries: 0,
				LoadTimeout: Duration(time.Hour), Scratch: "/s"}, false},
		{"a flag given as its default still overrides", []string{"--retries=2"}, DefaultRunOptions(), false},
		{"zero workers", []string{"--workers=0"}, RunOptions{}, true},
		{"zero item timeout", []string{"--item-timeout=0s"}, RunOptions{}, true},
		{"negative retries", []string{"--retries=-1"}, RunOptions{}, true},
		{"negative load timeout", []string{"--load-timeout=-1s"}, RunOptions{}, true},
		{"zero load timeout means the default", []string{"--load-timeout=0s"}, DefaultRunOptions(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f RunFlags
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			f.AddFlags(fs, DefaultRunOptions())
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			ov, err := f.Override(func(n string) bool { return fs.Changed(n) })
			if tt.bad {
				if !errors.Is(err, ErrBadOption) {
					t.Fatalf("Override: %v, want ErrBadOption", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := DefaultRunOptions().Apply(ov); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRunFlagsDefaults(t *testing.T) {
	var f RunFlags
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.AddFlags(fs, DefaultRunOptions())
	for flag, want := range map[string]string{"workers": "1", "gpus": "auto", "runtime": "auto",
		"item-timeout": "5m0s", "retries": "2", "load-timeout": "10m0s", "scratch": ""} {
		if got := fs.Lookup(flag).DefValue; got != want {
			t.Errorf("--%s default %q, want %q", flag, got, want)
		}
	}
}
