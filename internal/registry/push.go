package registry

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Write pushes img to the registry reference ref with the same transport rules as Open
// (plain HTTP only for loopback or o.Insecure hosts, retries, the docker config
// keychain). Failures are classified like Open's.
func Write(ctx context.Context, ref string, img v1.Image, o Options) error {
	o = o.withDefaults()
	r, err := Parse(ref, o.Insecure...)
	if err != nil {
		return err
	}
	if r.Kind != KindRegistry {
		return newError(ErrBadReference, ref, nil, "cannot push to %s: give a registry reference host/repo:tag", ref)
	}
	if o.Offline {
		return newError(ErrOffline, ref, nil, "cannot push %s: offline mode is set", ref)
	}
	plat, err := v1.ParsePlatform(o.Platform)
	if err != nil {
		return newError(ErrBadReference, ref, err, "bad platform %q: use os/arch[/variant]", o.Platform)
	}
	if err := remote.Write(r.Name, img, remoteOptions(ctx, *plat, o)...); err != nil {
		if cerr := classify(ctx, ref, r, err); cerr != nil {
			return fmt.Errorf("push: %w", cerr)
		}
	}
	return nil
}
