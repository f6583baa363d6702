package runner

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/scivision-hpc/scv-hpc/internal/container"
	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// startModel starts a model process for worker id and waits for its ready handshake.
// A process that does not start, exits, says it is not ready, speaks another protocol
// or stays silent past the load timeout gives a *LoadError with its stderr tail. While
// it waits, "waiting for the model to load (Ns)" is logged every LoadLogEvery.
func (r *session) startModel(ctx context.Context, id int, spec container.Spec, logf io.Writer, started int) (*process, handshake, error) {
	// The process outlives ctx by the grace period (answers in flight at a SIGTERM are
	// still recorded), so it gets its own context, cancelled when it is killed.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	cmd, err := r.o.Runtime.Command(pctx, spec)
	if err != nil {
		cancel()
		return nil, handshake{}, &LoadError{Stage: "start", Worker: id, Msg: err.Error()}
	}
	fmt.Fprintf(logf, "--- scv-hpc %s: worker %d: starting model process #%d (%s runtime): %s\n",
		time.Now().UTC().Format(time.RFC3339), id, started+1, r.o.Runtime.Name(), strings.Join(spec.Command, " "))
	p, err := startProcess(cmd, cancel, logf, r.o.MaxAnswerBytes)
	if err != nil {
		cancel()
		return nil, handshake{}, &LoadError{Stage: "start", Worker: id, Msg: fmt.Sprintf("cannot start %s: %v", cmd.Path, err)}
	}
	fail := func(msg string) (*process, handshake, error) {
		p.killAndWait()
		return nil, handshake{}, &LoadError{Stage: "load", Worker: id, Msg: msg, Stderr: p.tail.String()}
	}
	start := time.Now()
	t := time.NewTimer(r.o.loadTimeout)
	defer t.Stop()
	every := time.NewTicker(r.o.LoadLogEvery)
	defer every.Stop()
	for {
		select {
		case now := <-every.C:
			waited := now.Sub(start).Round(time.Second)
			r.o.Log.Info().Int("worker", id).Dur("waited", waited).Dur("load_timeout", r.o.loadTimeout).
				Msgf("waiting for the model to load (%s)", waited)
		case hs := <-p.hello:
			return r.checkHandshake(p, hs, fail)
		case _, ok := <-p.resps:
			if ok {
				continue // answers before the handshake: nothing was asked yet
			}
			select {
			case hs := <-p.hello:
				return r.checkHandshake(p, hs, fail)
			default:
			}
			<-p.waited
			return fail(fmt.Sprintf("the model process ended before its handshake (%s)", p.exitStatus()))
		case <-t.C:
			return fail(fmt.Sprintf(`no handshake within the load timeout (%s): the model must print {"scv":1,"ready":true,...} on stdout once loaded`, r.o.loadTimeout))
		case <-ctx.Done():
			p.killAndWait()
			return nil, handshake{}, ctx.Err()
		}
	}
}

// maxNotReady bounds the model's own reason quoted from a not-ready handshake.
const maxNotReady = 2000

func (r *session) checkHandshake(p *process, hs handshake, fail func(string) (*process, handshake, error)) (*process, handshake, error) {
	if hs.invalid != "" {
		return fail(`the handshake line is not valid (` + hs.invalid + `): the model must print the JSON {"scv":1,"ready":true,...} on stdout once loaded (in Python: print(json.dumps(...), flush=True))`)
	}
	if hs.SCV != ProtocolVersion {
		return fail(fmt.Sprintf("the model speaks predict protocol %d; this scv-hpc speaks %d", hs.SCV, ProtocolVersion))
	}
	if !hs.Ready {
		// Give it a moment to exit on its own, so its stderr is complete.
		select {
		case <-p.waited:
		case <-time.After(2 * time.Second):
		}
		msg := "the model reported it is not ready"
		if hs.Error != "" {
			msg += ": " + units.Clip(hs.Error, maxNotReady)
		}
		return fail(msg)
	}
	r.o.Log.Debug().Str("model", hs.Model).Int("max_batch", hs.MaxBatch).Msg("model ready")
	return p, hs, nil
}
