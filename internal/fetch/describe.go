package fetch

import (
	"errors"

	"github.com/rs/zerolog"

	"github.com/scivision-hpc/scv-hpc/internal/cache"
	"github.com/scivision-hpc/scv-hpc/internal/catalog"
)

// CatalogModel is a catalog entry with its cache state and predict command (the JSON
// of 'models --json' and 'models info --json').
type CatalogModel struct {
	*catalog.Entry
	ID      string   `json:"id"`
	Cached  bool     `json:"cached"`
	Digest  string   `json:"digest,omitempty"`
	SIF     string   `json:"sif,omitempty"`
	Command []string `json:"predict_command,omitempty"`
	From    string   `json:"predict_from,omitempty"`
}

// Describe joins entry e with the cache c, reading only (no lock, no write). The
// predict command is known from the catalog, or once the image is cached. A damaged
// cache does not hide the catalog: the model is shown as not cached, with a warning.
func Describe(c *cache.Cache, e *catalog.Entry, log zerolog.Logger) CatalogModel {
	v := CatalogModel{Entry: e, ID: e.ID()}
	t := &Target{Input: e.ID(), Kind: KindCatalog, Entry: e, Image: e.Image}
	d, sif, meta, err := Cached(c, t)
	if err != nil && !errors.Is(err, cache.ErrNotCached) {
		log.Warn().Err(err).Str("model", e.ID()).Msg("cache lookup failed")
	}
	if err == nil {
		v.Cached, v.Digest, v.SIF = true, d, sif
		v.Command, v.From, _ = PredictCommand(e.ID(), e, meta.Labels, meta.Entrypoint, meta.Cmd)
	} else if len(e.Predict) > 0 {
		v.Command, v.From = e.Predict, PredictFromCatalog
	}
	return v
}

// DescribeAll is Describe of every entry of cat, in catalog order.
func DescribeAll(c *cache.Cache, cat *catalog.Catalog, log zerolog.Logger) []CatalogModel {
	out := []CatalogModel{}
	for _, e := range cat.Entries() {
		out = append(out, Describe(c, e, log))
	}
	return out
}
