package container

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
)

// containerRuntime runs SIFs with apptainer or singularity (their exec CLI is the same).
type containerRuntime struct {
	name string // apptainer or singularity
	bin  string // path of the executable
}

func newContainerRuntime(name, bin string) *containerRuntime {
	return &containerRuntime{name: name, bin: bin}
}

func (r *containerRuntime) Name() string { return r.name }

// Prepare checks that the SIF exists; apptainer mounts it itself, nothing to unpack.
func (r *containerRuntime) Prepare(_ context.Context, sif string) error {
	fi, err := os.Stat(sif)
	if err != nil {
		return fmt.Errorf("%s: image %s: %w", r.name, sif, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: image %s is not a regular file", r.name, sif)
	}
	return nil
}

// envPrefix is how the host passes variables through --cleanenv.
func (r *containerRuntime) envPrefix() string {
	if r.name == Singularity {
		return "SINGULARITYENV_"
	}
	return "APPTAINERENV_"
}

// Args returns the argv (without the executable) of `exec` for s:
// exec [--nv] --cleanenv --bind DATA:/data:ro --bind SCRATCH:/scratch [--bind OUTPUT:/out] --pwd /scratch SIF CMD…
func (r *containerRuntime) Args(s Spec) []string {
	args := make([]string, 0, 12+len(s.Command))
	args = append(args, "exec")
	if s.GPU != "" {
		args = append(args, "--nv")
	}
	args = append(args, "--cleanenv",
		"--bind", s.DataRoot+":"+DataMount+":ro",
		"--bind", s.Scratch+":"+ScratchMount)
	if s.Output != "" {
		args = append(args, "--bind", s.Output+":"+OutputMount)
	}
	args = append(args, "--pwd", ScratchMount, s.SIF)
	return append(args, s.Command...)
}

// ExtraEnv returns the host environment entries that carry s.Env (and the GPU pinning)
// into the container, sorted.
func (r *containerRuntime) ExtraEnv(s Spec) []string {
	p := r.envPrefix()
	env := make([]string, 0, len(s.Env)+1)
	for k, v := range s.Env {
		if k == "CUDA_VISIBLE_DEVICES" && s.GPU != "" {
			continue
		}
		env = append(env, p+k+"="+v)
	}
	if s.GPU != "" {
		env = append(env, p+"CUDA_VISIBLE_DEVICES="+s.GPU)
	}
	sort.Strings(env)
	return env
}

// Command builds the apptainer/singularity exec process for s. The host environment
// is kept for the runtime itself (--cleanenv keeps it out of the container); the
// entries of ExtraEnv come last, so they win over same-named host ones. The process
// is killed when ctx is done.
func (r *containerRuntime) Command(ctx context.Context, s Spec) (*exec.Cmd, error) {
	if err := checkSpec(s); err != nil {
		return nil, fmt.Errorf("%s: %w", r.name, err)
	}
	cmd := exec.CommandContext(ctx, r.bin, r.Args(s)...)
	cmd.Env = append(os.Environ(), r.ExtraEnv(s)...)
	if s.GPU != "" {
		// Also pin on the host side: --nv's library discovery and the driver honour it.
		cmd.Env = append(cmd.Env, "CUDA_VISIBLE_DEVICES="+s.GPU)
	}
	return cmd, nil
}
