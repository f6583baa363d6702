package testenv

import (
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// TestStartSlurm runs a real array job with a fake GPU on the private cluster.
func TestStartSlurm(t *testing.T) {
	env := StartSlurm(t)
	dir := t.TempDir()
	cmd := exec.Command("sbatch", "--parsable", "--wait", "--array=0-1", "-n1", "--gres=gpu:1",
		"--output="+dir+"/%a.out", "--wrap", "echo task=$SLURM_ARRAY_TASK_ID gpus=$SLURM_JOB_GPUS")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	for _, task := range []string{"0", "1"} {
		b, err := os.ReadFile(dir + "/" + task + ".out")
		if err != nil {
			t.Fatal(err)
		}
		// A gpus= without a value would mean Slurm bound no GPU of the gres.
		if !regexp.MustCompile(`(^|\s)task=` + task + ` gpus=\S`).Match(b) {
			t.Errorf("task %s output %q, want task=%s gpus=<ids>", task, b, task)
		}
	}
}
