package slurm

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/scivision-hpc/scv-hpc/internal/results"
)

// SubmissionReport is the JSON form of a submission (submit and resubmit --json).
type SubmissionReport struct {
	JobDir string        `json:"job_dir"`
	DryRun bool          `json:"dry_run"`
	Arrays []ArrayReport `json:"arrays"`
}

// ArrayReport is one array of a SubmissionReport.
type ArrayReport struct {
	JobID   string   `json:"job_id,omitempty"`
	Script  string   `json:"script"`
	Shards  []int    `json:"shards"`
	Command []string `json:"command"`
}

// Report is the submission of shards of the job in jobDir as JSON data.
func (s *JobSubmission) Report(jobDir string, dryRun bool) SubmissionReport {
	r := SubmissionReport{JobDir: jobDir, DryRun: dryRun}
	for _, a := range s.Arrays {
		r.Arrays = append(r.Arrays, ArrayReport{a.Array.JobID, a.Script, a.Array.Shards, a.Command})
	}
	return r
}

// WriteDryRun writes what a dry run would submit of shards: the first script in full,
// then every sbatch command, then a summary line.
func (s *JobSubmission) WriteDryRun(w io.Writer, shards int) error {
	b, err := os.ReadFile(s.Arrays[0].Script)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "# %s\n%s\n", s.Arrays[0].Script, b)
	for _, a := range s.Arrays {
		fmt.Fprintln(w, QuoteArgs(a.Command))
	}
	_, err = fmt.Fprintf(w, "# dry run: %d shards in %d array(s) (MaxArraySize %d); nothing submitted\n", shards, len(s.Arrays), s.MaxArraySize)
	return err
}

// ArraysText lists the submitted arrays as "ID (N tasks), …".
func (s *JobSubmission) ArraysText() string {
	ids := make([]string, len(s.Arrays))
	for i, a := range s.Arrays {
		ids[i] = fmt.Sprintf("%s (%d tasks)", a.Array.JobID, len(a.Array.Shards))
	}
	return strings.Join(ids, ", ")
}

// WriteText writes the status (status without --json): a table of shards, with the
// state of each shard's latest Slurm task when the job has any, then what it leaves
// out (done shards when there are more than maxRows and not all; files the scan
// skipped; a scheduler that could not be asked) and the summary line.
func (st *JobStatus) WriteText(w io.Writer, maxRows int, all bool) error {
	fmt.Fprintf(w, "job %s (model %s)\n", st.JobDir, st.Model)
	withSlurm := false
	for _, s := range st.Shards {
		withSlurm = withSlurm || s.Slurm != nil
	}
	hideDone := !all && len(st.Shards) > maxRows
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "SHARD\tSTATE\tINPUTS\tOK\tFAILED\tPENDING\t"
	if withSlurm {
		header += "SLURM\tTASK\t"
	}
	fmt.Fprintln(tw, header)
	hidden := 0
	for _, s := range st.Shards {
		if hideDone && s.State == results.StateDone {
			hidden++
			continue
		}
		row := fmt.Sprintf("%06d\t%s\t%d\t%d\t%d\t%d\t", s.Index, s.State, s.Inputs, s.OK, s.Failed, s.Pending)
		if withSlurm {
			if s.Slurm != nil {
				state := s.Slurm.State
				if s.Slurm.Reason != "" {
					state += " (" + s.Slurm.Reason + ")"
				}
				row += state + "\t" + s.Slurm.JobID + "\t"
			} else {
				row += "-\t-\t"
			}
		}
		fmt.Fprintln(tw, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if hidden > 0 {
		fmt.Fprintf(w, "(%d done shards not listed; --all lists them)\n", hidden)
	}
	if st.ScanSkipped > 0 {
		fmt.Fprintf(w, "note: the scan of the data left out %d file(s) (unreadable, broken or outside links; see the log of the command that created the job)\n", st.ScanSkipped)
	}
	if st.SlurmError != "" {
		fmt.Fprintf(w, "Slurm could not be asked: %s\n", st.SlurmError)
	}
	_, err := fmt.Fprintln(w, st.Summary)
	return err
}
