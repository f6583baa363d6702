package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/lockfile"
)

// Lock timings of job and shard locks: a holder touches its lock every 30 s, and a lock
// of another host untouched for 3 min is taken over (a node that died, a task killed
// with SIGKILL); on this host a dead owner's lock is taken over at once.
const (
	LockRefresh = 30 * time.Second
	LockStale   = 3 * time.Minute
)

// ErrBusy says that another run holds a job or a shard (errors.As *BusyError).
var ErrBusy = errors.New("in use by another run")

// BusyError names the run that holds a job or shard lock.
type BusyError struct {
	Dir   string
	What  string // "the job", "shard 3"
	Owner lockfile.Info
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s of %s is in use by another run: host %s pid %d since %s",
		e.What, e.Dir, e.Owner.Host, e.Owner.PID, e.Owner.Time.Local().Format(time.RFC3339))
}

func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// Unlock releases a lock taken by LockJob or LockShard.
type Unlock func()

// LockJob takes the job's lock without waiting: one creator, writer or local runner of
// a job at a time, across nodes. A held lock gives a *BusyError naming its holder.
func (d Dir) LockJob() (Unlock, error) { return d.lock(d.JobLock(), "the job") }

// LockShard takes the lock of shard i without waiting: one run of a shard at a time
// (a Slurm task, a predict), across nodes. A held lock gives a *BusyError.
func (d Dir) LockShard(i int) (Unlock, error) {
	return d.lock(d.ShardLock(i), fmt.Sprintf("shard %d", i))
}

// WaitShard takes the lock of shard i, waiting while another run holds it: onWait (when
// set) hears of the holder once. A holder that died is taken over once its lock is
// stale (at once on this host, after LockStale elsewhere), which is what a Slurm task
// requeued after its node failed needs. A cancelled ctx gives a *BusyError.
func (d Dir) WaitShard(ctx context.Context, i int, onWait func(owner lockfile.Info)) (Unlock, error) {
	unlock, err := d.LockShard(i)
	var be *BusyError
	if !errors.As(err, &be) {
		return unlock, err
	}
	if onWait != nil {
		onWait(be.Owner)
	}
	l, err := lockfile.Acquire(ctx, d.ShardLock(i), lockOptions)
	var he *lockfile.HeldError
	if errors.As(err, &he) {
		return nil, &BusyError{Dir: string(d), What: be.What, Owner: he.Owner}
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s of %s: %w", be.What, d, err)
	}
	return l.Release, nil
}

var lockOptions = lockfile.Options{StaleAfter: LockStale, RefreshEvery: LockRefresh}

func (d Dir) lock(path, what string) (Unlock, error) {
	if err := os.MkdirAll(d.LocksDir(), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s of %s: %w", what, d, err)
	}
	l, err := lockfile.TryAcquire(path, lockOptions)
	var he *lockfile.HeldError
	if errors.As(err, &he) {
		return nil, &BusyError{Dir: string(d), What: what, Owner: he.Owner}
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s of %s: %w", what, d, err)
	}
	return l.Release, nil
}

// LockNew creates the job directory when it is missing and takes its job lock: one
// predict, submit or resubmit of a job directory at a time.
func (d Dir) LockNew() (Unlock, error) {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return nil, fmt.Errorf("create the job directory: %w", err)
	}
	return d.LockJob()
}
