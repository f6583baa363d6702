// Package templates embeds the files scv-hpc renders or installs: the Slurm
// batch script template (job.sbatch.tmpl, a text/template rendered by package
// slurm). Site administrators override the script with 'scv-hpc submit
// --template FILE' or 'template:' in the site configuration.
package templates

import "embed"

// FS holds the embedded templates.
//
//go:embed job.sbatch.tmpl
var FS embed.FS

// JobScript is the name of the Slurm array script template inside FS.
const JobScript = "job.sbatch.tmpl"
