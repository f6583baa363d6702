package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync/atomic"
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
	log       io.Writer     // the worker log, for the runner's notes
	maxLine   int           // answer line cap
	waited    chan struct{} // closed when Wait returned
	werr      error         // Wait's result, valid after waited
	junk      int           // stdout lines that were not protocol (reader goroutine only)
	greeted   bool          // the handshake was read (reader goroutine only)
	eofKilled atomic.Bool   // killed because it closed stdout and lived on
}

// startProcess starts cmd with pipes, in its own process group, stderr to log.
func startProcess(cmd *exec.Cmd, cancel context.CancelFunc, log io.Writer, maxLine int) (*process, error) {
	p := &process{cmd: cmd, cancel: cancel, hello: make(chan handshake, 1), resps: make(chan []response, 16),
		tail: &tailBuffer{max: 4096}, log: log, maxLine: maxLine, waited: make(chan struct{})}
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
		pr.Close()
		pw.Close()
		return nil, err
	}
	p.stdout = stdout
	cmd.WaitDelay = killWait
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
// channel operation for many answers), then waits for the process. A line longer
// than maxLine is not kept: it is scanned for the ids it answers as it streams past,
// and those inputs fail. When stdout ends, the model has nothing more to say: one
// that closed stdout but lives on is killed (its whole group) after killWait, so
// that Wait, and the worker, never block on it.
func (p *process) read(stdout io.Reader) {
	defer func() {
		t := time.AfterFunc(killWait, func() {
			p.eofKilled.Store(true)
			p.killGroup()
		})
		p.werr = p.cmd.Wait()
		t.Stop()
		close(p.waited)
	}()
	defer close(p.resps)
	br := bufio.NewReaderSize(stdout, min(256<<10, max(p.maxLine, 16)))
	var long []byte
	var chunk []response
	var scan idScanner
	for {
		line, err := br.ReadSlice('\n')
		over := len(line) > p.maxLine
		if over {
			scan.reset()
			scan.Write(line)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if !over {
				long = append(long[:0], line...)
			}
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				if !over && len(long)+len(line) > p.maxLine {
					over = true
					scan.reset()
					scan.Write(long)
				}
				if over {
					scan.Write(line)
					continue
				}
				if need := len(long) + len(line); need > cap(long) {
					// Grow by doubling, but never past the cap: a line near the cap
					// costs the cap, not twice it.
					grown := make([]byte, len(long), min(max(2*cap(long), need), p.maxLine))
					copy(grown, long)
					long = grown
				}
				long = append(long, line...)
			}
			line = long
		}
		n := len(chunk)
		switch {
		case over:
			chunk = p.overlong(scan.finish(), chunk)
		case len(line) > 0:
			chunk = p.parse(line, chunk)
		}
		if !p.greeted && len(chunk) > n {
			// Nothing was asked before the handshake: such an answer would otherwise
			// be taken for the answer to the request that later gets its id.
			fmt.Fprintf(p.log, "scv-hpc: ignored %d answer(s) written before the handshake\n", len(chunk)-n)
			chunk = chunk[:n]
		}
		if cap(long) > 1<<20 {
			long = nil // one huge answer does not pin its buffer for the process's life
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

// parse decodes one line into chunk; what is not protocol is noted in the log.
func (p *process) parse(line []byte, chunk []response) []response {
	n := len(chunk)
	hs, chunk, perr := parseLine(line, chunk)
	bad := ""
	if perr != nil && !p.greeted {
		bad = badHandshake(line, perr)
	}
	switch {
	case hs != nil:
		p.greeted = true
		select {
		case p.hello <- *hs:
		default: // a second handshake: ignored
		}
	case bad != "":
		select {
		case p.hello <- handshake{invalid: fmt.Sprintf("%s: %.200q", bad, line)}:
		default:
		}
	case perr != nil:
		p.junk++
		if p.junk <= 5 {
			fmt.Fprintf(p.log, "scv-hpc: ignored a stdout line that is not protocol v1: %.200q\n", line)
		}
	case len(chunk) > n && chunk[n].unusable:
		fmt.Fprintf(p.log, "scv-hpc: an answer cannot be used (%s): %.200q\n", chunk[n].err, line)
	}
	return chunk
}

// overlong fails the inputs an answer line over the cap names.
func (p *process) overlong(ids []uint64, chunk []response) []response {
	fmt.Fprintf(p.log, "scv-hpc: a stdout line longer than the cap of %d bytes was dropped (it answered %d input(s))\n", p.maxLine, len(ids))
	why := fmt.Sprintf("the answer is longer than the cap of %d bytes on one answer line; write large outputs to $SCV_OUTPUT_DIR and answer their path", p.maxLine)
	for _, id := range ids {
		chunk = append(chunk, response{seq: id, unusable: true, err: why})
	}
	return chunk
}

// killGroup sends SIGKILL to the process's whole group.
func (p *process) killGroup() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
}

// kill ends the whole process group at once. Should a process that left the group
// still hold stdout open, the pipe is closed shortly after so the reader ends anyway.
func (p *process) kill() {
	p.stdinFile.Close()
	p.killGroup()
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	p.cancel()
	time.AfterFunc(killWait, func() { p.stdout.Close() })
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
				select {
				case <-p.waited:
				case <-t.C:
					p.killAndWait()
				}
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
	if p.eofKilled.Load() {
		return fmt.Sprintf("it closed its stdout but kept running; killed after %s", killWait)
	}
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
