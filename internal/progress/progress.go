// Package progress reports long operations (bytes pulled, inputs predicted) through one
// interface: a redrawn bar on a terminal, periodic log lines in batch jobs, nothing in tests.
package progress

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/units"
)

// Reporter receives the progress of one operation. Implementations are safe for
// concurrent use: parallel layer downloads and runner workers call Add at once.
type Reporter interface {
	// SetTotal sets (or raises) the amount of work expected, in the operation's unit.
	SetTotal(n int64)
	// Add records n more units done.
	Add(n int64)
	// Done ends the report (final line or bar); further calls are ignored.
	Done()
}

// Factory makes a Reporter for a named operation ("pull faces", "shard 3"); unit is
// "bytes" or a noun such as "inputs".
type Factory func(name, unit string) Reporter

// Nop is a Reporter that reports nothing.
type Nop struct{}

func (Nop) SetTotal(int64) {}
func (Nop) Add(int64)      {}
func (Nop) Done()          {}

// NopFactory makes Nop reporters.
func NopFactory(string, string) Reporter { return Nop{} }

// counter holds the shared counting state.
type counter struct {
	total, done atomic.Int64
	once        sync.Once
	stop        chan struct{}
	wg          sync.WaitGroup
}

func (c *counter) SetTotal(n int64) {
	for {
		old := c.total.Load()
		if n <= old || c.total.CompareAndSwap(old, n) {
			return
		}
	}
}
func (c *counter) Add(n int64) { c.done.Add(n) }

// every calls tick every interval, from its own goroutine, until end.
func (c *counter) every(interval time.Duration, tick func()) {
	c.stop = make(chan struct{})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				tick()
			}
		}
	}()
}

// end stops the ticks, waits for the last one, then calls final; later calls do nothing.
func (c *counter) end(final func()) {
	c.once.Do(func() {
		close(c.stop)
		c.wg.Wait()
		final()
	})
}

// LogFactory returns a Factory whose reporters write a zerolog line every interval
// while work goes on, and one at the end.
func LogFactory(log zerolog.Logger, interval time.Duration) Factory {
	return func(name, unit string) Reporter {
		r := &logReporter{log: log, name: name, unit: unit}
		r.start = time.Now()
		r.every(interval, func() { r.line("progress") })
		return r
	}
}

type logReporter struct {
	counter
	log        zerolog.Logger
	name, unit string
	start      time.Time
}

func (r *logReporter) line(msg string) {
	r.log.Info().Str("op", r.name).Int64("done", r.done.Load()).Int64("total", r.total.Load()).
		Str("unit", r.unit).Dur("elapsed", time.Since(r.start)).Msg(msg)
}

func (r *logReporter) Done() { r.end(func() { r.line("finished") }) }

// BarFactory returns a Factory whose reporters redraw one line on w (a terminal)
// several times a second.
func BarFactory(w io.Writer) Factory {
	return func(name, unit string) Reporter {
		r := &barReporter{w: w, name: name, unit: unit, start: time.Now()}
		r.every(200*time.Millisecond, func() { r.draw(false) })
		return r
	}
}

type barReporter struct {
	counter
	mu         sync.Mutex
	w          io.Writer
	name, unit string
	start      time.Time
}

func (r *barReporter) draw(final bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	done, total := r.done.Load(), r.total.Load()
	fmt.Fprintf(r.w, "\r%s", Line(r.name, r.unit, done, total, time.Since(r.start)))
	if final {
		fmt.Fprintln(r.w)
	}
}

func (r *barReporter) Done() { r.end(func() { r.draw(true) }) }

// Line formats one progress line: name, a 30-column bar, done/total and rate.
func Line(name, unit string, done, total int64, elapsed time.Duration) string {
	const width = 30
	bar := make([]byte, width)
	fill := 0
	if total > 0 {
		fill = int(done * width / total)
		if fill > width {
			fill = width
		}
	}
	for i := range bar {
		if i < fill {
			bar[i] = '#'
		} else {
			bar[i] = '.'
		}
	}
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = fmt.Sprintf(" %s/s", amount(int64(float64(done)/s), unit))
	}
	return fmt.Sprintf("%-24s [%s] %s/%s%s", name, bar, amount(done, unit), amount(total, unit), rate)
}

func amount(n int64, unit string) string {
	if unit == "bytes" {
		return units.Bytes(n)
	}
	return fmt.Sprintf("%d", n)
}
