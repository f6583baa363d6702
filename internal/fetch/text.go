package fetch

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/scivision-hpc/scv-hpc/internal/slurm"
)

// The text forms of 'models', 'models info', 'pull' and 'stage' without --json.

// WriteModels writes the models as a table: name (deprecated ones marked), version,
// GPU, tasks, cached, image.
func WriteModels(w io.Writer, models []CatalogModel) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tGPU\tTASKS\tCACHED\tIMAGE")
	for _, v := range models {
		n := v.Name
		if v.Deprecated != "" {
			n += " (deprecated)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n, dash(v.Version), yesNo(v.GPU),
			dash(strings.Join(v.Tasks, ",")), yesNo(v.Cached), v.Image)
	}
	return tw.Flush()
}

// WriteCard writes the model as a card of "key: value" lines.
func (v CatalogModel) WriteCard(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k, val string) { fmt.Fprintf(tw, "%s:\t%s\n", k, val) }
	row("name", v.Name)
	row("version", dash(v.Version))
	row("image", v.Image)
	row("description", dash(v.Description))
	row("tasks", dash(strings.Join(v.Tasks, ", ")))
	row("gpu", yesNo(v.GPU))
	if len(v.Command) > 0 {
		row("predict", fmt.Sprintf("%s  (from %s)", slurm.QuoteArgs(v.Command), v.From))
	} else {
		row("predict", "from the image (label "+PredictLabel+", else Entrypoint+Cmd); pull it to see")
	}
	row("deprecated", dash(v.Deprecated))
	row("catalog", v.Source)
	if v.Cached {
		row("cached", v.Digest)
		row("sif", v.SIF)
	} else {
		row("cached", "no (run 'scv-hpc pull "+v.ID+"')")
	}
	return tw.Flush()
}

// Row is one line of the summary of pull and stage (and its JSON).
type Row struct {
	Model  string `json:"model"`
	Status string `json:"status"` // converted, cached, failed
	Digest string `json:"digest,omitempty"`
	SIF    string `json:"sif,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Rows makes the summary rows of the results rs of models (PullAll's order). The
// text of a failure is explain(model, err): the error with what to do added.
func Rows(models []string, rs []PullResult, explain func(model string, err error) error) (rows []Row, failed int) {
	rows = make([]Row, len(rs))
	for i, r := range rs {
		rows[i] = Row{Model: models[i]}
		switch {
		case r.Err != nil:
			rows[i].Status, rows[i].Error = "failed", explain(models[i], r.Err).Error()
			failed++
		case r.Model.Built:
			rows[i].Digest, rows[i].SIF, rows[i].Status = r.Model.Digest, r.Model.SIF, "converted"
		default:
			rows[i].Digest, rows[i].SIF, rows[i].Status = r.Model.Digest, r.Model.SIF, "cached"
		}
	}
	return rows, failed
}

// WriteRows writes the summary as a table: model, status, digest, SIF.
func WriteRows(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tSTATUS\tDIGEST\tSIF")
	for _, r := range rows {
		sif := r.SIF
		if r.Status == "failed" {
			sif = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Model, r.Status, dash(r.Digest), sif)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
