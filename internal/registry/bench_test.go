package registry_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// BenchmarkPrefetch pulls an image of 8 random 4 MiB layers from the in-process
// registry into a fresh directory, with 1 and 4 parallel layer fetches.
func BenchmarkPrefetch(b *testing.B) {
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(nilLogger())))
	b.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(4<<20, 8)
	if err != nil {
		b.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/bench/img:1")
	if err := remote.Write(ref, img); err != nil {
		b.Fatal(err)
	}
	size := int64(0)
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		size += n
	}
	for _, jobs := range []int{1, 4} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			o := registry.Options{Jobs: jobs}
			b.SetBytes(size)
			for b.Loop() {
				got, _, err := registry.Open(context.Background(), host+"/bench/img:1", o)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := registry.Prefetch(context.Background(), got, b.TempDir(), o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
