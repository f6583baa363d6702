package container

import (
	"fmt"

	"github.com/scivision-hpc/scv-hpc/internal/sif"
)

// imageEnv returns the image's environment (OCI config Env) recorded in the SIF; an
// image without a recorded config has no extra environment.
func imageEnv(path string) ([]string, error) {
	info, err := sif.Inspect(path)
	if err != nil {
		return nil, fmt.Errorf("image %s is not a valid SIF: %w", path, err)
	}
	if info.Config == nil {
		return nil, nil
	}
	return info.Config.Env, nil
}
