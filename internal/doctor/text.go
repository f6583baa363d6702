package doctor

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/scivision-hpc/scv-hpc/internal/config"
)

// Settings turns the resolved settings into checks, one each ("setting NAME": the
// value and where it came from), to show before the host's.
func Settings(settings []config.Setting) []Check {
	var checks []Check
	for _, st := range settings {
		v := st.Value
		if v == "" {
			v = "-"
		}
		checks = append(checks, Check{Name: "setting " + st.Name, Status: OK, Detail: fmt.Sprintf("%s (from %s)", v, st.Source)})
	}
	return checks
}

// WriteText writes one aligned line per check, and its fix below when it has one.
func WriteText(w io.Writer, checks []Check) error {
	width := 0
	for _, c := range checks {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&b, "%-4s  %-*s  %s\n", c.Status, width, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(&b, "%-4s  %-*s  fix: %s\n", "", width, "", c.Fix)
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return errors.Join(errors.New("writing the report"), err)
	}
	return nil
}

// Failed counts the checks that failed.
func Failed(checks []Check) int {
	n := 0
	for _, c := range checks {
		if c.Status == Fail {
			n++
		}
	}
	return n
}
