// Package logging sets up zerolog for scv-hpc: a console writer for people at a
// terminal, JSON lines everywhere else (Slurm job logs, pipes, CI).
package logging

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Formats accepted by New.
const (
	FormatAuto    = "auto"
	FormatConsole = "console"
	FormatJSON    = "json"
)

// IsTerminal reports whether w is a terminal (false for anything that is not an *os.File).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// New returns a logger writing to w at the given level ("debug", "info", "warn",
// "error") in the given format ("auto" picks console on a terminal, JSON otherwise).
func New(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("log level %q: want one of trace, debug, info, warn, error", level)
	}
	switch format {
	case FormatAuto, "":
		if IsTerminal(w) {
			format = FormatConsole
		} else {
			format = FormatJSON
		}
	case FormatConsole, FormatJSON:
	default:
		return zerolog.Nop(), fmt.Errorf("log format %q: want auto, console or json", format)
	}
	out := w
	if format == FormatConsole {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: time.Kitchen, NoColor: !IsTerminal(w)}
	}
	return zerolog.New(out).Level(lvl).With().Timestamp().Logger(), nil
}
