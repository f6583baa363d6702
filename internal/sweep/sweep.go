// Package sweep removes what interrupted work left behind: the cache's debris and
// unused layer blobs (cache.GCAll) and the scratch directories that conversions which
// died on this host left in the temporary directory (convert.SweepScratch). It is
// 'cache gc', kept apart so that the cache does not depend on the converter.
package sweep

import (
	"context"
	"os"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/convert"
)

// Run collects the garbage of c (GCAll with opts and blobMaxAge) and, unless
// opts.DryRun, removes the dead conversions' scratch directories in tmpDir ("": the
// system's, os.TempDir), reported as cache.StatusStaleTemp. A scratch directory that
// cannot be removed is left for a later run.
func Run(ctx context.Context, c *cache.Cache, opts cache.GCOptions, blobMaxAge time.Duration, tmpDir string) (cache.GCReport, error) {
	rep, err := c.GCAll(ctx, opts, blobMaxAge)
	if err != nil || opts.DryRun {
		return rep, err
	}
	if tmpDir == "" {
		tmpDir = os.TempDir()
	}
	gone, _ := convert.SweepScratch(tmpDir)
	for _, p := range gone {
		rep.Removed = append(rep.Removed, cache.VerifyResult{Status: cache.StatusStaleTemp, Path: p, Detail: "scratch directory of a conversion that died"})
	}
	return rep, nil
}
