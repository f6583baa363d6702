package imagebuild_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/scivision-hpc/scv-hpc/internal/imagebuild"
	"github.com/scivision-hpc/scv-hpc/internal/registry"
)

// TestFlagsBuild: bad flags are refused before anything is packed; good ones build
// the same image to every output, with the configuration the flags give.
func TestFlagsBuild(t *testing.T) {
	src := filepath.Join(t.TempDir(), "model")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	out := t.TempDir()
	add := "--add=" + src + ":/usr/local/bin/model"
	cfg := []string{add, "--entrypoint=/usr/local/bin/model", "--label=org.scivision.predict=/usr/local/bin/model", "--env=A=1"}
	tests := []struct {
		name string
		args []string
		open string // reference to open the output by; "" for bad flags
	}{
		{"no output", []string{add}, ""},
		{"two outputs", []string{add, "--push=" + host + "/m:1", "--docker-archive=" + out + "/x.tar"}, ""},
		{"nothing to pack", []string{"--oci-layout=" + out + "/l"}, ""},
		{"bad add", []string{"--add=relative", "--oci-layout=" + out + "/l"}, ""},
		{"bad env", []string{add, "--env==x", "--oci-layout=" + out + "/l"}, ""},
		{"bad label", []string{add, "--label=x", "--oci-layout=" + out + "/l"}, ""},
		{"bad entrypoint", []string{add, "--entrypoint=[1", "--oci-layout=" + out + "/l"}, ""},
		{"oci layout", append(cfg, "--oci-layout="+out+"/layout:1.0"), "oci-layout:" + out + "/layout:1.0"},
		{"push", append(cfg, "--push="+host+"/scivision/m:1.0"), host + "/scivision/m:1.0"},
		{"docker archive", append(cfg, "--docker-archive="+out+"/m.tar"), "docker-archive:" + out + "/m.tar"},
	}
	var first string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f imagebuild.Flags
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			f.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			d, err := f.Build(context.Background(), registry.Options{}, zerolog.Nop())
			if tt.open == "" {
				if !errors.Is(err, imagebuild.ErrBadFlag) {
					t.Fatalf("Build: %v, want ErrBadFlag", err)
				}
				if ents, _ := os.ReadDir(out); len(ents) != 0 && tt.name == "nothing to pack" {
					t.Errorf("bad flags wrote %v", ents)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if first == "" {
				first = d.String()
			} else if d.String() != first {
				t.Errorf("digest %s, want the same image as before, %s", d, first)
			}
			img, _, err := registry.Open(context.Background(), tt.open, registry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			c := cf.Config
			if c.Labels["org.scivision.predict"] != "/usr/local/bin/model" || strings.Join(c.Entrypoint, " ") != "/usr/local/bin/model" || !strings.HasSuffix(strings.Join(c.Env, " "), " A=1") {
				t.Errorf("config %+v", c)
			}
			if tt.name != "docker archive" { // an archive stores uncompressed layers: another manifest
				if got, _ := img.Digest(); got != d {
					t.Errorf("%s holds %s, Build said %s", tt.open, got, d)
				}
			}
		})
	}
}

// TestFlagsBuildPushInsecure: a registry that is not on loopback is pushed to over
// plain HTTP only when --insecure-registry names it.
func TestFlagsBuildPushInsecure(t *testing.T) {
	var ip string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ip = n.IP.String()
			break
		}
	}
	if ip == "" {
		t.Skip("no address of this host that is not loopback")
	}
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skip(err)
	}
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	host := l.Addr().String()
	src := filepath.Join(t.TempDir(), "model")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, insecure := range []bool{false, true} {
		var f imagebuild.Flags
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		f.AddFlags(fs)
		args := []string{"--add=" + src + ":/m", "--push=" + host + "/lab/m:1"}
		if insecure {
			args = append(args, "--insecure-registry="+host)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		_, err := f.Build(context.Background(), registry.Options{Retries: -1}, zerolog.Nop())
		if insecure != (err == nil) {
			t.Errorf("push with --insecure-registry %v: %v", insecure, err)
		}
	}
}
