package fetch

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
	"github.com/scivision-hpc/scv-hpc/internal/progress"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
	"github.com/scivision-hpc/scv-hpc/internal/testenv"
)

func TestEnsureOnlineThenOffline(t *testing.T) {
	host, stop := startRegistry(t)
	image := host + "/lab/demo:1"
	digest := testenv.Push(t, testImage(t, "amd64", demoFiles, map[string]string{PredictLabel: "/usr/local/bin/demo --serve 'a b'"}), image)
	o := newOptions(t, fmt.Sprintf(`models:
  - {name: demo, version: "1", image: %q, gpu: true}
  - {name: other, image: %q}
`, image, host+"/lab/other:1"), nil)
	var mu sync.Mutex
	var reports []string
	o.Registry.Progress = func(name, unit string) progress.Reporter {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, name)
		return progress.Nop{}
	}

	m, err := Ensure(ctx(t), "demo", o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pull demo@1"}; !reflect.DeepEqual(reports, want) {
		t.Errorf("progress reports %q, want %q (named after the model)", reports, want)
	}
	if !m.Built || m.Digest != digest || m.Name != "demo@1" || !m.GPU {
		t.Fatalf("first Ensure = %+v, want built %s", m, digest)
	}
	if want := []string{"/usr/local/bin/demo", "--serve", "a b"}; !reflect.DeepEqual(m.Predict, want) || m.PredictFrom != PredictFromLabel {
		t.Errorf("predict = %q from %s, want %q from the label", m.Predict, m.PredictFrom, want)
	}
	if st, err := os.Stat(m.SIF); err != nil || st.Size() == 0 {
		t.Fatalf("SIF %s: %v", m.SIF, err)
	}
	for _, ref := range []string{image, "demo@1", "demo"} {
		if d, err := o.Cache.ResolveRef(ref); err != nil || d != digest {
			t.Errorf("ref %s = %s, %v; want %s", ref, d, err, digest)
		}
	}
	again, err := Ensure(ctx(t), image, o)
	if err != nil || again.Built || again.SIF != m.SIF {
		t.Fatalf("second Ensure = %+v, %v; want the cached SIF", again, err)
	}

	stop() // from here on, nothing may touch the network
	o.Offline = true
	for _, model := range []string{"demo", "demo@1", image, "demo@" + digest, host + "/lab/demo@" + digest} {
		got, err := Ensure(ctx(t), model, o)
		if err != nil {
			t.Errorf("offline Ensure(%s): %v", model, err)
			continue
		}
		if got.SIF != m.SIF || got.Digest != digest || got.Built {
			t.Errorf("offline Ensure(%s) = %+v", model, got)
		}
		if r, err := Resolve(ctx(t), model, o); err != nil || r.SIF != m.SIF {
			t.Errorf("Resolve(%s) = %v, %v", model, r, err)
		}
	}

	_, err = Ensure(ctx(t), "other", o)
	want := fmt.Sprintf(`model "other" (%s/lab/other:1) is not in the cache %s and offline mode is set`, host, o.Cache.Dir)
	if err == nil || err.Error() != want {
		t.Fatalf("offline miss:\n got %v\nwant %s", err, want)
	}
	if !errors.Is(err, cache.ErrNotCached) || !errors.Is(err, registry.ErrOffline) || strings.Contains(err.Error(), "\n") {
		t.Errorf("offline miss %v does not match ErrNotCached/ErrOffline or is not one line", err)
	}
	// What failed, with the cache named; the command to type is added by cmd.
	if _, err := Resolve(ctx(t), host+"/lab/demo:2", Options{Cache: o.Cache}); !errors.Is(err, cache.ErrNotCached) ||
		!strings.Contains(err.Error(), o.Cache.Dir) {
		t.Errorf("online Resolve miss = %v", err)
	}
}

func TestEnsureConcurrentConvertsOnce(t *testing.T) {
	host, _ := startRegistry(t)
	image := host + "/lab/demo:1"
	testenv.Push(t, testImage(t, "amd64", demoFiles, nil, "/usr/local/bin/demo"), image)
	o := newOptions(t, "", nil)
	const n = 6
	var (
		wg     sync.WaitGroup
		models [n]*Model
		errs   [n]error
	)
	for i := range n {
		wg.Go(func() { models[i], errs[i] = Ensure(ctx(t), image, o) })
	}
	wg.Wait()
	built := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Ensure %d: %v", i, errs[i])
		}
		if models[i].Built {
			built++
		}
		if models[i].SIF != models[0].SIF {
			t.Errorf("Ensure %d gave %s, not %s", i, models[i].SIF, models[0].SIF)
		}
	}
	if built != 1 {
		t.Errorf("%d conversions, want 1", built)
	}
	if want := []string{"/usr/local/bin/demo"}; !reflect.DeepEqual(models[0].Predict, want) || models[0].PredictFrom != PredictFromEntrypoint {
		t.Errorf("predict = %q from %s", models[0].Predict, models[0].PredictFrom)
	}
}

func TestEnsureFailureClasses(t *testing.T) {
	host, _ := startRegistry(t)
	testenv.Push(t, testImage(t, "arm64", demoFiles, nil), host+"/lab/armonly:1")
	dead, stopDead := startRegistry(t)
	stopDead()
	o := newOptions(t, fmt.Sprintf(`models:
  - {name: gone, image: %q}
  - {name: notag, image: %q}
  - {name: arm, image: %q}
`, dead+"/lab/x:1", host+"/lab/armonly:nope", host+"/lab/armonly:1"), nil)
	tests := []struct {
		model   string
		offline bool
		kind    error
		words   []string
	}{
		{"gone", false, registry.ErrUnreachable, []string{`model "gone"`, dead + "/lab/x:1", "unreachable"}},
		{"notag", false, registry.ErrNotFound, []string{`model "notag"`, "armonly:nope"}},
		{host + "/lab/never:1", false, registry.ErrNotFound, []string{"never:1"}},
		{"arm", false, registry.ErrNoPlatform, []string{`model "arm"`, "linux/amd64", "linux/arm64"}},
		{"gone", true, cache.ErrNotCached, []string{`model "gone"`, "offline mode is set", o.Cache.Dir}},
		{"nosuchmodel", false, catalog.ErrUnknown, []string{"not in the catalog"}},
		{"/no/such/file.sif", false, os.ErrNotExist, []string{"/no/such/file.sif"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s offline=%v", tt.model, tt.offline), func(t *testing.T) {
			o := o
			o.Offline = tt.offline
			_, err := Ensure(ctx(t), tt.model, o)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// The arm64 image is fine when asked for.
	o.Registry.Platform = "linux/arm64"
	if _, err := Ensure(ctx(t), "arm", o); err != nil {
		t.Errorf("arm with --platform linux/arm64: %v", err)
	}
}

func TestEnsureSIFFileAndDeprecation(t *testing.T) {
	host, _ := startRegistry(t)
	image := host + "/lab/old:3"
	digest := testenv.Push(t, testImage(t, "amd64", demoFiles, nil, "/usr/local/bin/demo"), image)
	var logs bytes.Buffer
	o := newOptions(t, fmt.Sprintf("models:\n  - {name: old, image: %q, deprecated: use new instead, predict: [/usr/local/bin/demo, --v1]}\n", image), &logs)
	m, err := Ensure(ctx(t), "old", o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "deprecated: use new instead") {
		t.Errorf("no deprecation warning in %s", logs.String())
	}
	if want := []string{"/usr/local/bin/demo", "--v1"}; !reflect.DeepEqual(m.Predict, want) || m.PredictFrom != PredictFromCatalog {
		t.Errorf("predict = %q from %s", m.Predict, m.PredictFrom)
	}
	f, err := Ensure(ctx(t), m.SIF, o)
	if err != nil {
		t.Fatal(err)
	}
	if f.SIF != m.SIF || f.Digest != digest || f.Ref == "" || f.Built {
		t.Errorf("Ensure(.sif) = %+v, want digest %s from the provenance", f, digest)
	}
}
