package gpu

import (
	"errors"
	"reflect"
	"testing"
)

func TestDetectGPUs(t *testing.T) {
	smiOut := "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-aaaa)\nGPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb)\n"
	tests := []struct {
		name    string
		env     map[string]string
		smi     string
		want    []string
		wantSrc string
	}{
		{"nothing", nil, "", nil, "none"},
		{"slurm only", map[string]string{"SLURM_JOB_GPUS": "2,3"}, smiOut, []string{"2", "3"}, "SLURM_JOB_GPUS"},
		{"slurm renumbered by cgroup", map[string]string{"SLURM_JOB_GPUS": "2,3", "CUDA_VISIBLE_DEVICES": "0,1"}, "", []string{"0", "1"}, "SLURM_JOB_GPUS+CUDA_VISIBLE_DEVICES"},
		{"slurm range", map[string]string{"SLURM_JOB_GPUS": "0-3"}, "", []string{"0", "1", "2", "3"}, "SLURM_JOB_GPUS"},
		{"cuda only", map[string]string{"CUDA_VISIBLE_DEVICES": "1"}, smiOut, []string{"1"}, "CUDA_VISIBLE_DEVICES"},
		{"cuda uuid", map[string]string{"CUDA_VISIBLE_DEVICES": "GPU-aaaa"}, "", []string{"GPU-aaaa"}, "CUDA_VISIBLE_DEVICES"},
		{"cuda NoDevFiles", map[string]string{"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, "", nil, "none"},
		{"nvidia-smi", nil, smiOut, []string{"0", "1"}, "nvidia-smi"},
		{"nvidia-smi garbage", nil, "No devices were found\n", nil, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			smi := func() ([]byte, error) {
				if tt.smi == "" {
					return nil, errors.New("not installed")
				}
				return []byte(tt.smi), nil
			}
			got, src := detect(getenv, smi)
			if !reflect.DeepEqual(got, tt.want) || src != tt.wantSrc {
				t.Errorf("got %q from %s, want %q from %s", got, src, tt.want, tt.wantSrc)
			}
		})
	}
}

func TestResolveGPUs(t *testing.T) {
	t.Setenv("SLURM_JOB_GPUS", "")
	t.Setenv("CUDA_VISIBLE_DEVICES", "5")
	tests := []struct {
		flag    string
		want    []string
		wantErr bool
	}{
		{"none", nil, false},
		{"", nil, false},
		{"auto", []string{"5"}, false},
		{"all", []string{"5"}, false},
		{"ALL", []string{"5"}, false},
		{"0,1", []string{"0", "1"}, false},
		{"0-2", []string{"0", "1", "2"}, false},
		{",", nil, true},
		{"0,a b", nil, true},
	}
	for _, tt := range tests {
		got, _, err := Resolve(tt.flag)
		if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Resolve(%q) = %q, %v; want %q (err %v)", tt.flag, got, err, tt.want, tt.wantErr)
		}
		// Check refuses what Resolve refuses, and nothing else.
		if err := Check(tt.flag); (err != nil) != tt.wantErr || (err != nil && !errors.Is(err, ErrBadList)) {
			t.Errorf("Check(%q) = %v, want an error %v", tt.flag, err, tt.wantErr)
		}
	}
}

func FuzzParseIDList(f *testing.F) {
	for _, s := range []string{"0,1", "0-3", "GPU-abc,1", "NoDevFiles", "3-1", "1-100000", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := parseIDList(s)
		if len(ids) > 1024+len(s) {
			t.Fatalf("%q expanded to %d ids", s, len(ids))
		}
		for _, id := range ids {
			if id == "" {
				t.Fatalf("%q gave an empty id", s)
			}
		}
	})
}
