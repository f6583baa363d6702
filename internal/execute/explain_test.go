package execute

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/job"
)

// commitSIF commits a small SIF to a new cache and returns its path.
func commitSIF(t *testing.T) string {
	t.Helper()
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("explain")))
	build := func(ctx context.Context, tmp string) (*cache.Meta, error) {
		payload, err := sif.NewDescriptorInput(sif.DataGeneric, bytes.NewReader(bytes.Repeat([]byte("model"), 4096)), sif.OptObjectName("payload.bin"))
		if err != nil {
			return nil, err
		}
		prov, _ := json.Marshal(map[string]string{"ref": "ghcr.io/x/explain:1", "digest": digest})
		pi, err := sif.NewDescriptorInput(sif.DataGenericJSON, bytes.NewReader(prov), sif.OptObjectName("scv-provenance.json"))
		if err != nil {
			return nil, err
		}
		f, err := sif.CreateContainerAtPath(tmp, sif.OptCreateDeterministic(), sif.OptCreateWithDescriptors(payload, pi))
		if err != nil {
			return nil, err
		}
		return &cache.Meta{Source: "ghcr.io/x/explain:1"}, f.UnloadContainer()
	}
	p, _, _, err := cache.Open(t.TempDir()).Commit(context.Background(), digest, build)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExplainFailure: after a failed run, a corrupt cached SIF becomes the error (with
// the run's failure in its text); a sound SIF, a SIF outside a cache and a cancelled
// run keep the run's error.
func TestExplainFailure(t *testing.T) {
	runErr := errors.New("unsquashfs: read error")
	sound := commitSIF(t)
	flipped := commitSIF(t)
	b, err := os.ReadFile(flipped)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-100] ^= 0x40
	if err := os.WriteFile(flipped, b, 0o644); err != nil {
		t.Fatal(err)
	}
	loose := filepath.Join(t.TempDir(), "model.sif")
	if err := os.WriteFile(loose, []byte("not a SIF"), 0o644); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		sif     string
		ctx     context.Context
		corrupt bool
	}{
		{"bit-flipped SIF", flipped, context.Background(), true},
		{"sound SIF", sound, context.Background(), false},
		{"SIF outside a cache", loose, context.Background(), false},
		{"cancelled run", flipped, cancelled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := job.Save(dir, &job.Job{Model: "explain", SIF: tc.sif, Shards: 1}); err != nil {
				t.Fatal(err)
			}
			err := explainFailure(tc.ctx, dir, runErr)
			if got := errors.Is(err, cache.ErrCorrupt); got != tc.corrupt {
				t.Fatalf("explainFailure = %v; corrupt %v, want %v", err, got, tc.corrupt)
			}
			if !strings.Contains(err.Error(), runErr.Error()) {
				t.Errorf("explainFailure = %v: the run's failure is not in it", err)
			}
			if !tc.corrupt && err != runErr {
				t.Errorf("explainFailure = %v, want the run's error as it is", err)
			}
		})
	}
}
