// Command faces is scv-hpc's demo model: it finds faces in images with the pigo
// cascade classifier and speaks predict protocol v1 on stdin/stdout.
//
// On start it loads the cascade (flag -cascade, env FACES_CASCADE, default
// /usr/share/faces/facefinder) and prints the handshake
//
//	{"scv":1,"ready":true,"model":"faces","max_batch":16}
//
// or {"scv":1,"ready":false,"error":"…"} and exits 1. Then it answers every request line,
// {"id":"17","path":"/data/a.png"} or {"batch":[{"id":…,"path":…},…]}, with one line per
// item: {"id":"17","ok":true,"result":{"width":W,"height":H,"faces":[{"x","y","size","score"}],"count":N}}
// or {"id":"17","ok":false,"error":"decode /data/a.png: …"}. Face boxes are squares:
// (x, y) is the top-left corner, size the side, in pixels. It exits 0 when stdin ends.
// It reads PNG, JPEG, GIF, BMP, TIFF and WebP. Logs go to stderr.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
)

const defaultCascade = "/usr/share/faces/facefinder"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main with its arguments and streams, for tests.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("faces", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := defaultCascade
	if env := os.Getenv("FACES_CASCADE"); env != "" {
		def = env
	}
	cascade := fs.String("cascade", def, "pigo cascade file (env FACES_CASCADE)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	d, err := LoadDetector(*cascade)
	if err != nil {
		fmt.Fprintf(stderr, "faces: %v\n", err)
		_ = enc.Encode(Ready{SCV: 1, Ready: false, Error: err.Error()})
		return 1
	}
	if err := enc.Encode(Ready{SCV: 1, Ready: true, Model: "faces", MaxBatch: maxBatch}); err != nil {
		fmt.Fprintf(stderr, "faces: write handshake: %v\n", err)
		return 1
	}
	if err := Serve(d, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "faces: %v\n", err)
		return 1
	}
	return 0
}
