package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one running model: its stdin (requests), the responses its stdout
// reader goroutine hands over in chunks, and its stderr (worker log + a tail kept
// for error messages).
type process struct {
	cmd       *exec.Cmd
	cancel    context.CancelFunc
	stdinFile *os.File        // requests; non-blocking, so writes take a deadline
	stdout    io.Closer       // answers; closed by force after a kill if still open
	hello     chan handshake  // the first handshake line (buffered)
	resps     chan []response // chunks of answers; closed when stdout ends
	tail      *tailBuffer
	waited    chan struct{} // closed when Wait returned
	werr      error         // Wait's result, valid after waited
	junk      int           // stdout lines that were not protocol (reader goroutine only)
}

// tailBuffer keeps the last bytes written to it: the model's stderr tail for errors.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// String returns the last lines kept, trimmed to max bytes.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		if i := strings.IndexByte(string(b), '\n'); i >= 0 && i < len(b)-1 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}

// startProcess starts cmd with pipes, in its own process group, stderr to log.
func startProcess(cmd *exec.Cmd, cancel context.CancelFunc, log io.Writer) (*process, error) {
	p := &process{cmd: cmd, cancel: cancel, hello: make(chan handshake, 1), resps: make(chan []response, 16),
		tail: &tailBuffer{max: 4096}, waited: make(chan struct{})}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// Own process group: the kill reaches apptainer's children too. Die with the runner.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	cmd.Stderr = io.MultiWriter(log, p.tail)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = pr
	p.stdinFile = pw
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = stdout
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Start()
	pr.Close()
	if err != nil {
		pw.Close()
		return nil, err
	}
	go p.read(stdout)
	return p, nil
}

// read hands the model's answers to the worker, a chunk per burst of lines (one
// channel operation for many answers), then waits for the process.
func (p *process) read(stdout io.Reader) {
	defer func() {
		p.werr = p.cmd.Wait()
		close(p.waited)
	}()
	defer close(p.resps)
	br := bufio.NewReaderSize(stdout, 256<<10)
	var long []byte
	var chunk []response
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			var hs *handshake
			var perr error
			hs, chunk, perr = parseLine(line, chunk)
			switch {
			case hs != nil:
				select {
				case p.hello <- *hs:
				default: // a second handshake: ignored
				}
			case perr != nil:
				p.junk++
				if p.junk <= 5 {
					fmt.Fprintf(p.cmd.Stderr, "scv-hpc: ignored a stdout line that is not protocol v1: %.200q\n", line)
				}
			}
		}
		if err != nil {
			if len(chunk) > 0 {
				p.resps <- chunk
			}
			return
		}
		if len(chunk) > 0 && (br.Buffered() == 0 || len(chunk) >= 512) {
			p.resps <- chunk
			chunk = make([]response, 0, cap(chunk))
		}
	}
}

// kill ends the whole process group at once. Should a process that left the group
// still hold stdout open, the pipe is closed shortly after so the reader ends anyway.
func (p *process) kill() {
	p.stdinFile.Close()
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Process.Kill()
	}
	p.cancel()
	time.AfterFunc(5*time.Second, func() { p.stdout.Close() })
}

// killAndWait kills the process, drops what it still wrote and waits for its exit.
func (p *process) killAndWait() {
	p.kill()
	for range p.resps {
	}
	<-p.waited
}

// finish closes stdin (the model's cue to exit) and waits up to grace for it to
// exit on its own, then kills it; it drains what the model still writes.
func (p *process) finish(grace time.Duration) {
	p.stdinFile.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	for {
		select {
		case _, ok := <-p.resps:
			if !ok {
				<-p.waited
				return
			}
		case <-t.C:
			p.killAndWait()
			return
		}
	}
}

// exitStatus describes how the process ended, after waited.
func (p *process) exitStatus() string {
	if p.werr == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(p.werr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by signal " + ws.Signal().String()
		}
	}
	return p.werr.Error()
}

// openWorkerLog opens logs/worker-SHARD-N.log for appending.
func openWorkerLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("worker log: %w", err)
	}
	return f, nil
}
