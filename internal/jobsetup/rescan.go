package jobsetup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/scivision-hpc/scv-hpc/internal/job"
	"github.com/scivision-hpc/scv-hpc/internal/results"
	"github.com/scivision-hpc/scv-hpc/internal/sharding"
)

// ErrRescanSlurm: a job submitted to Slurm is not re-sharded under its arrays.
var ErrRescanSlurm = errors.New("the job was submitted to Slurm: its shards are not re-cut")

// Rescan re-shards the job old in s.Dir with s's data and plan, and keeps the final
// result of every input that is still there: the new shards and results are built in
// a temporary directory beside them and swapped in; the old shards/ and results/ are
// moved to s.Dir/replaced-TIME/ (results of inputs that are gone stay there). job.json
// is replaced with the new counts.
func Rescan(ctx context.Context, s Spec, old *job.Job) (*job.Job, error) {
	if old.Slurm != nil && len(old.Slurm.Arrays) > 0 {
		return nil, fmt.Errorf("rescan %s: %w", s.Dir, ErrRescanSlurm)
	}
	dir := job.Dir(s.Dir)
	kept := map[string]results.Record{}
	for i := range old.Shards {
		fin, err := results.Final(dir.ResultFile(i))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("rescan: %w", err)
		}
		for p, r := range fin {
			kept[p] = r
		}
	}
	tmp, err := os.MkdirTemp(s.Dir, ".rescan-")
	if err != nil {
		return nil, fmt.Errorf("rescan: %w", err)
	}
	defer os.RemoveAll(tmp)
	j := *old
	if !s.IncludeSet {
		s.Include = old.Include
	}
	if !s.PlanSet {
		s.Plan = sharding.Plan{ShardSize: old.ShardSize, Shards: old.ShardCount}
	}
	if err := shard(ctx, s, &j, tmp); err != nil {
		return nil, err
	}
	nd := job.Dir(tmp)
	if err := os.MkdirAll(nd.ResultsDir(), 0o755); err != nil {
		return nil, fmt.Errorf("rescan: %w", err)
	}
	carried := 0
	for i := range j.Shards {
		var recs []results.Record
		if err := sharding.ReadShard(tmp, i, func(rel string) error {
			if r, ok := kept[rel]; ok {
				recs = append(recs, r)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			continue
		}
		w, err := results.OpenWriter(nd.ResultFile(i))
		if err != nil {
			return nil, err
		}
		err = w.WriteBatch(recs)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("rescan: %w", err)
		}
		carried += len(recs)
	}
	aside, err := moveAside(s.Dir)
	if err != nil {
		return nil, err
	}
	// job.json went aside with the rest and is written last: a crash before that
	// leaves shards and results without job.json, which the next run re-creates from
	// the same data and plan (so the same shards), keeping the results.
	for _, p := range []string{nd.ShardsDir(), nd.ResultsDir()} {
		if err := os.Rename(p, filepath.Join(s.Dir, filepath.Base(p))); err != nil {
			return nil, fmt.Errorf("rescan: %w (the old job is in %s)", err, aside)
		}
	}
	if err := job.Create(s.Dir, &j); err != nil {
		return nil, fmt.Errorf("rescan: %w (the old job is in %s)", err, aside)
	}
	s.Log.Info().Int("shards", j.Shards).Int64("inputs", j.Inputs).Int("results_kept", carried).Str("old", aside).
		Msg("re-sharded the data; results of inputs that are gone stay with the old shards")
	return &j, nil
}
