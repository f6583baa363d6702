package job

import (
	"testing"
	"time"
)

func TestRunOptionsApply(t *testing.T) {
	recorded := RunOptions{Workers: 3, GPUs: "none", Runtime: "builtin", ItemTimeout: Duration(time.Minute), Retries: 0, Scratch: "/s"}
	four, zero, hour, gpus := 4, 0, time.Hour, "0,1"
	tests := []struct {
		name string
		r    RunOptions
		o    Override
		want RunOptions
	}{
		{"defaults of a new job", DefaultRunOptions(), Override{},
			RunOptions{Workers: 1, GPUs: "auto", Runtime: "auto", ItemTimeout: Duration(5 * time.Minute), Retries: 2, LoadTimeout: Duration(10 * time.Minute)}},
		{"recorded options kept, retries 0 means none", recorded, Override{},
			RunOptions{Workers: 3, GPUs: "none", Runtime: "builtin", ItemTimeout: Duration(time.Minute), Retries: 0, LoadTimeout: Duration(DefaultLoadTimeout), Scratch: "/s"}},
		{"explicit overrides win", recorded, Override{Workers: &four, Retries: &four, LoadTimeout: &hour, GPUs: &gpus},
			RunOptions{Workers: 4, GPUs: "0,1", Runtime: "builtin", ItemTimeout: Duration(time.Minute), Retries: 4, LoadTimeout: Duration(time.Hour), Scratch: "/s"}},
		{"an override to zero retries is kept", DefaultRunOptions(), Override{Retries: &zero},
			RunOptions{Workers: 1, GPUs: "auto", Runtime: "auto", ItemTimeout: Duration(DefaultItemTimeout), Retries: 0, LoadTimeout: Duration(DefaultLoadTimeout)}},
		{"an old job.json with zero fields", RunOptions{}, Override{},
			RunOptions{Workers: 1, GPUs: "auto", Runtime: "auto", ItemTimeout: Duration(DefaultItemTimeout), Retries: 0, LoadTimeout: Duration(DefaultLoadTimeout)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.Apply(tt.o); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
