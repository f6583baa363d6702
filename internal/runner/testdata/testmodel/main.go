// Command testmodel is a predict-protocol-v1 model for the runner's tests. By default
// it answers every input at once with {"path":…,"worker":…}, plus "gpu" (the
// CUDA_VISIBLE_DEVICES it sees) when that is set; flags make it misbehave.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// outDir is where the model writes its outputs: $SCV_OUTPUT_DIR, or on the tests'
// host runtime (no /out bind) the host directory named in SCV_TEST_OUT_MOUNT.
func outDir() string {
	dir := os.Getenv("SCV_OUTPUT_DIR")
	if m := os.Getenv("SCV_TEST_OUT_MOUNT"); m != "" && dir == "/out" {
		dir = m
	}
	return dir
}

type request struct {
	ID    string    `json:"id"`
	Path  string    `json:"path"`
	Batch []request `json:"batch"`
}

func main() {
	refuse := flag.Bool("refuse", false, "answer the handshake with ready:false and exit 1")
	silent := flag.Bool("silent", false, "never handshake")
	exitAfter := flag.Int("exit-after", 0, "exit (status 3) after answering this many inputs")
	hangOn := flag.String("hang-on", "", "hang forever on the input with this base name")
	crashOn := flag.String("crash-on", "", "exit (status 2) on the input with this base name (ALL: on every input)")
	failOn := flag.String("fail-on", "", "answer ok:false for the input with this base name")
	maxBatch := flag.Int("max-batch", 1, "max_batch announced in the handshake")
	delay := flag.Duration("delay", 0, "sleep this long per input")
	spin := flag.Duration("spin", 0, "compute (busy-wait) this long per input, like a real model")
	closeAfter := flag.Int("close-stdout-after", 0, "after answering this many inputs, close stdout and live on (ignoring SIGTERM); -1: before the handshake")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM and SIGINT")
	rawOn := flag.String("raw-on", "", "answer the input with this base name with the -raw line instead")
	raw := flag.String("raw", "", "the answer line for -raw-on, with {id} replaced by the request id; q:\"…\" is a Go-quoted line (bytes that are not UTF-8 survive job.json)")
	answerBytes := flag.Int("answer-bytes", 0, "pad each ok result with a string field of this many bytes")
	stderrBytes := flag.Int("stderr-bytes", 0, "write this many bytes to stderr per input, then a line naming the input")
	countStarts := flag.Bool("count-starts", false, "append a line to starts.log in $SCV_OUTPUT_DIR at each start")
	writeOutput := flag.Bool("write-output", false, "write BASE.out into $SCV_OUTPUT_DIR per input and answer its host path ($SCV_OUTPUT_HOST/BASE.out) as output, with output_dir = $SCV_OUTPUT_DIR")
	handshakeLine := flag.String("handshake-line", "", "print this line instead of the handshake, then serve as usual")
	chatter := flag.String("chatter", "", "print this line on stdout before the handshake, as a chatty library does")
	flag.Parse()

	if *ignoreTerm || *closeAfter > 0 {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	}
	if *countStarts {
		f, err := os.OpenFile(filepath.Join(outDir(), "starts.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(os.Stderr, "testmodel: %v\n", err)
			os.Exit(5)
		}
		fmt.Fprintf(f, "worker %s pid %d\n", os.Getenv("SCV_WORKER"), os.Getpid())
		f.Close()
	}
	if q, ok := strings.CutPrefix(*raw, "q:"); ok {
		var err error
		if *raw, err = strconv.Unquote(q); err != nil {
			fmt.Fprintf(os.Stderr, "testmodel: -raw: %v\n", err)
			os.Exit(5)
		}
	}
	fmt.Fprintln(os.Stderr, "testmodel: loading weights")
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	switch {
	case *silent:
		fmt.Fprintln(os.Stderr, "testmodel: stuck while loading")
		time.Sleep(24 * time.Hour)
	case *refuse:
		fmt.Fprintln(os.Stderr, "testmodel: ImportError: libcudnn.so.8: cannot open shared object file")
		fmt.Fprintln(out, `{"scv":1,"ready":false,"error":"cannot import torch"}`)
		out.Flush()
		os.Exit(1)
	}
	if *closeAfter < 0 {
		os.Stdout.Close()
		fmt.Fprintln(os.Stderr, "testmodel: closed stdout before the handshake, living on")
		time.Sleep(24 * time.Hour)
	}
	if *chatter != "" {
		fmt.Fprintln(out, *chatter)
	}
	if *handshakeLine != "" {
		fmt.Fprintln(out, *handshakeLine)
	} else {
		fmt.Fprintf(out, `{"scv":1,"ready":true,"model":"testmodel","max_batch":%d}`+"\n", *maxBatch)
	}
	out.Flush()
	worker := os.Getenv("SCV_WORKER")
	var gpu []byte
	if v, ok := os.LookupEnv("CUDA_VISIBLE_DEVICES"); ok {
		q, _ := json.Marshal(v)
		gpu = append([]byte(`,"gpu":`), q...)
	}
	answered := 0
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	var buf []byte
	answer := func(r request) {
		base := path.Base(r.Path)
		if *crashOn == "ALL" {
			base = *crashOn
		}
		switch base {
		case *hangOn:
			out.Flush()
			time.Sleep(24 * time.Hour)
		case *crashOn:
			out.Flush()
			fmt.Fprintf(os.Stderr, "testmodel: segmentation fault on %s\n", r.Path)
			os.Exit(2)
		}
		if *delay > 0 {
			time.Sleep(*delay)
		}
		if *stderrBytes > 0 {
			os.Stderr.Write(bytes.Repeat([]byte("e"), *stderrBytes))
			fmt.Fprintf(os.Stderr, "\ntestmodel: answered %s\n", r.Path)
		}
		if *spin > 0 {
			for end := time.Now().Add(*spin); time.Now().Before(end); {
			}
		}
		var extra []byte
		if *writeOutput {
			// The host runtime of the tests has no /out bind: it names the host
			// directory standing in for it in SCV_TEST_OUT_MOUNT.
			dir := outDir()
			name := base + ".out"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(r.Path), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "testmodel: %v\n", err)
				os.Exit(5)
			}
			host, _ := json.Marshal(filepath.Join(os.Getenv("SCV_OUTPUT_HOST"), name))
			od, _ := json.Marshal(os.Getenv("SCV_OUTPUT_DIR"))
			extra = append(append(append(append(extra, `,"output":`...), host...), `,"output_dir":`...), od...)
		}
		if base == *rawOn {
			buf = append(buf[:0], strings.ReplaceAll(*raw, "{id}", r.ID)+"\n"...)
		} else if base == *failOn {
			buf = append(buf[:0], `{"id":`...)
			buf = strconv.AppendQuote(buf, r.ID)
			buf = append(buf, `,"ok":false,"error":"cannot decode image"}`+"\n"...)
		} else {
			buf = append(buf[:0], `{"id":`...)
			buf = strconv.AppendQuote(buf, r.ID)
			buf = append(buf, `,"ok":true,"result":{"path":`...)
			p, _ := json.Marshal(r.Path)
			buf = append(buf, p...)
			buf = append(buf, `,"worker":"`...)
			buf = append(buf, worker...)
			buf = append(buf, '"')
			buf = append(buf, gpu...)
			buf = append(buf, extra...)
			if *answerBytes > 0 {
				buf = append(buf, `,"pad":"`...)
				buf = append(buf, bytes.Repeat([]byte("x"), *answerBytes)...)
				buf = append(buf, '"')
			}
			buf = append(buf, "}}\n"...)
		}
		out.Write(buf)
		answered++
		if *closeAfter > 0 && answered >= *closeAfter {
			out.Flush()
			os.Stdout.Close()
			fmt.Fprintln(os.Stderr, "testmodel: closed stdout, living on")
			time.Sleep(24 * time.Hour)
		}
		if *exitAfter > 0 && answered >= *exitAfter {
			out.Flush()
			fmt.Fprintln(os.Stderr, "testmodel: out of memory")
			os.Exit(3)
		}
	}
	for {
		line, err := in.ReadSlice('\n')
		if len(line) > 0 {
			var r request
			if jerr := json.Unmarshal(line, &r); jerr != nil {
				fmt.Fprintf(os.Stderr, "testmodel: bad request %q: %v\n", line, jerr)
				os.Exit(4)
			}
			if r.Batch != nil {
				for _, b := range r.Batch {
					answer(b)
				}
			} else {
				answer(r)
			}
			if in.Buffered() == 0 {
				out.Flush()
			}
		}
		if err != nil {
			out.Flush()
			return
		}
	}
}
