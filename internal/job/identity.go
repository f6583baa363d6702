package job

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Identity is what decides a job's answers: the image's manifest digest (or, for a
// local SIF without one, its path) and the predict command run in it, which carries
// every model option (the adapter's --model NAME, --max-batch, …). Two runs with one
// identity give the same answers, so their results may be mixed (resume); two with
// different identities never are.
type Identity struct {
	Digest  string   `json:"digest,omitempty"`
	SIF     string   `json:"sif,omitempty"` // only when there is no digest
	Predict []string `json:"predict"`
}

// Key is a stable hash of the identity, "sha256:<hex>", recorded in job.json.
func (id Identity) Key() string {
	if id.Digest != "" {
		id.SIF = ""
	}
	if id.Predict == nil {
		id.Predict = []string{}
	}
	b, _ := json.Marshal(id)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// String names the identity for people: "IMAGE running CMD".
func (id Identity) String() string {
	return fmt.Sprintf("%s running %q", cmp.Or(id.Digest, id.SIF), strings.Join(id.Predict, " "))
}

// Identity returns the job's identity, from its digest, SIF and predict command.
func (j *Job) Identity() Identity {
	id := Identity{Digest: j.Digest, Predict: j.Predict}
	if j.Digest == "" {
		id.SIF = j.SIF
	}
	return id
}

// MismatchError says that a job directory holds a job other than the one asked for.
// What names the difference ("model", "data", "include", "shard plan", "inputs").
type MismatchError struct {
	Dir        string
	What       string
	Have, Want string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("this job directory %s holds results of %s, not %s", e.Dir, e.Have, e.Want)
}

// CheckIdentity returns a *MismatchError when j, the job in dir, was made by another
// model, image or predict command than want (model names the wanted one for people).
// A job.json written before identities were recorded is judged by its fields.
func (j *Job) CheckIdentity(dir, model string, want Identity) error {
	have := j.Identity()
	if have.Key() == want.Key() && (j.IdentityKey == "" || j.IdentityKey == want.Key()) {
		return nil
	}
	if slices.Equal(have.Predict, want.Predict) && have.Digest == want.Digest && have.SIF == want.SIF && j.IdentityKey != "" {
		// The recorded key disagrees with the recorded fields: job.json was edited.
		return &MismatchError{Dir: dir, What: "model", Have: fmt.Sprintf("an identity %s that its own fields do not give", j.IdentityKey), Want: want.String()}
	}
	return &MismatchError{Dir: dir, What: "model",
		Have: fmt.Sprintf("model %s (%s)", j.Model, have), Want: fmt.Sprintf("%s (%s)", model, want)}
}
