package fetch

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// maxListLine bounds one line of a model list, which may come from anyone.
const maxListLine = 4096

// ReadModelList reads a model list as 'scv-hpc stage -f FILE' takes it: one MODEL per
// line; blank lines and everything from a '#' that starts a line or follows a blank are
// comments. A line with more than one word is an error naming the line, so a missing
// newline between two models is caught. source names the list in errors.
func ReadModelList(r io.Reader, source string) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxListLine)
	var models []string
	for n := 1; sc.Scan(); n++ {
		line := stripComment(sc.Text())
		fields := strings.FieldsFunc(line, unicode.IsSpace)
		switch len(fields) {
		case 0:
			continue
		case 1:
			models = append(models, fields[0])
		default:
			return nil, fmt.Errorf("%s:%d: %q: one model per line", source, n, strings.TrimSpace(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w (lines are limited to %d bytes)", source, err, maxListLine)
	}
	return models, nil
}

func stripComment(line string) string {
	for i, r := range line {
		if r == '#' && (i == 0 || unicode.IsSpace(rune(line[i-1]))) {
			return line[:i]
		}
	}
	return line
}
