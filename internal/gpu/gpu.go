package gpu

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ErrBadList is returned by Resolve for a GPU list it cannot read.
var ErrBadList = errors.New("bad GPU list")

// Detect returns the GPU ids this process may use and where they came from:
// SLURM_JOB_GPUS (the allocation), then CUDA_VISIBLE_DEVICES, then `nvidia-smi -L`.
// When Slurm allocated GPUs and also set CUDA_VISIBLE_DEVICES with as many entries
// (cgroup-constrained jobs renumber devices from 0), the CUDA_VISIBLE_DEVICES ids are
// returned, because those are the ones CUDA understands inside the job.
// No GPU gives nil and "none".
func Detect() (ids []string, source string) {
	return detect(os.Getenv, nvidiaSMI)
}

func detect(getenv func(string) string, smi func() ([]byte, error)) ([]string, string) {
	cuda := parseIDList(getenv("CUDA_VISIBLE_DEVICES"))
	if slurm := parseIDList(getenv("SLURM_JOB_GPUS")); len(slurm) > 0 {
		if len(cuda) == len(slurm) {
			return cuda, "SLURM_JOB_GPUS+CUDA_VISIBLE_DEVICES"
		}
		return slurm, "SLURM_JOB_GPUS"
	}
	if len(cuda) > 0 {
		return cuda, "CUDA_VISIBLE_DEVICES"
	}
	if out, err := smi(); err == nil {
		if ids := parseNvidiaSMI(out); len(ids) > 0 {
			return ids, "nvidia-smi"
		}
	}
	return nil, "none"
}

func nvidiaSMI() ([]byte, error) {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "nvidia-smi", "-L").Output()
}

// parseIDList reads "0,1,3", "0-3" or a mix; "", "NoDevFiles", "none" and "-1" mean none.
// Non-numeric entries (GPU UUIDs, MIG ids) are kept as they are.
func parseIDList(s string) []string {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "", "nodevfiles", "none", "-1":
		return nil
	}
	var ids []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if lo, hi, ok := strings.Cut(f, "-"); ok {
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil && a <= b && b-a < 1024 {
				for i := a; i <= b; i++ {
					ids = append(ids, strconv.Itoa(i))
				}
				continue
			}
		}
		ids = append(ids, f)
	}
	return ids
}

// parseNvidiaSMI reads `nvidia-smi -L` lines "GPU 0: NVIDIA A100 (UUID: GPU-…)".
func parseNvidiaSMI(out []byte) []string {
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "GPU ")
		if !ok {
			continue
		}
		id, _, ok := strings.Cut(rest, ":")
		if _, err := strconv.Atoi(id); ok && err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// Resolve turns the --gpus flag into device ids: "none" (or "") gives none,
// "auto" (or "all", as Docker users type it) asks Detect, anything else is a
// list such as "0,1" or "0-3".
func Resolve(flag string) ([]string, string, error) {
	switch strings.ToLower(strings.TrimSpace(flag)) {
	case "", "none":
		return nil, "none", nil
	case "auto", "all":
		ids, src := Detect()
		return ids, src, nil
	}
	ids, err := parseList(flag)
	if err != nil {
		return nil, "", err
	}
	return ids, "--gpus", nil
}

// Check returns ErrBadList for a --gpus value Resolve refuses, without detecting any
// GPU (submit checks the flag on a login node; the compute nodes resolve it).
func Check(flag string) error {
	switch strings.ToLower(strings.TrimSpace(flag)) {
	case "", "none", "auto", "all":
		return nil
	}
	_, err := parseList(flag)
	return err
}

// parseList returns the device ids of a --gpus list such as "0,1" or "0-3".
func parseList(flag string) ([]string, error) {
	ids := parseIDList(flag)
	if len(ids) == 0 {
		return nil, fmt.Errorf("GPU list %q: %w: want auto, none, or device ids such as 0,1", flag, ErrBadList)
	}
	for _, id := range ids {
		if strings.ContainsAny(id, " \t\"'") {
			return nil, fmt.Errorf("GPU list %q: %w: device id %q", flag, ErrBadList, id)
		}
	}
	return ids, nil
}
