package sweep

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/convert"
)

// TestRun: the scratch directory of a conversion whose process died is removed and
// reported; one of a live process (this one) and a dry run leave theirs alone.
func TestRun(t *testing.T) {
	tmp := t.TempDir()
	live, err := convert.MkScratch(tmp, "convert")
	if err != nil {
		t.Fatal(err)
	}
	// A dead process's directory: the name MkScratch gives, with the pid of a
	// process that has exited.
	p := exec.Command("true")
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	name := strings.Replace(filepath.Base(live), fmt.Sprintf("-%d-", os.Getpid()), fmt.Sprintf("-%d-", p.Process.Pid), 1)
	dead := filepath.Join(tmp, name)
	if err := os.Mkdir(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	c := cache.Open(t.TempDir())
	for _, dry := range []bool{true, false} {
		rep, err := Run(t.Context(), c, cache.GCOptions{DryRun: dry}, 0, tmp)
		if err != nil {
			t.Fatal(err)
		}
		removed := len(rep.Removed) == 1 && rep.Removed[0].Path == dead && rep.Removed[0].Status == cache.StatusStaleTemp
		if removed == dry {
			t.Errorf("Run(dry %v) = %+v", dry, rep)
		}
		if _, err := os.Stat(dead); (err == nil) != dry {
			t.Errorf("Run(dry %v): dead scratch there: %v", dry, err)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live conversion's scratch was removed: %v", err)
	}
}
