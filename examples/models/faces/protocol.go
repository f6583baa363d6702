package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
)

// maxBatch is the batch size announced in the handshake.
const maxBatch = 16

// maxLine bounds one request line; a longer line is answered with an error and skipped.
const maxLine = 4 << 20

// Ready is the handshake line of predict protocol v1.
type Ready struct {
	SCV      int    `json:"scv"`
	Ready    bool   `json:"ready"`
	Model    string `json:"model,omitempty"`
	MaxBatch int    `json:"max_batch,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Item is one image to predict: the runner's id, echoed back unchanged, and a path.
type Item struct {
	ID   json.RawMessage `json:"id"`
	Path string          `json:"path"`
}

// Request is one request line: a single item, or a batch of items.
type Request struct {
	Item
	Batch []Item `json:"batch"`
}

// Answer is one answer line.
type Answer struct {
	ID     json.RawMessage `json:"id"`
	OK     bool            `json:"ok"`
	Result *Result         `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

var nullID = json.RawMessage("null")

// ParseRequest decodes one request line into the items it asks for. A line that is not
// a valid request is an error that names what is wrong.
func ParseRequest(line []byte) ([]Item, error) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("bad request line: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bad request line: more than one JSON value")
	}
	if req.Batch != nil {
		if req.ID != nil || req.Path != "" {
			return nil, errors.New(`bad request line: "batch" together with "id" or "path"`)
		}
		for i, it := range req.Batch {
			if err := checkItem(it); err != nil {
				return nil, fmt.Errorf("bad request line: batch item %d: %w", i, err)
			}
		}
		return req.Batch, nil
	}
	if err := checkItem(req.Item); err != nil {
		return nil, fmt.Errorf("bad request line: %w", err)
	}
	return []Item{req.Item}, nil
}

func checkItem(it Item) error {
	if len(it.ID) == 0 || bytes.Equal(it.ID, nullID) {
		return errors.New(`missing "id"`)
	}
	if it.Path == "" {
		return errors.New(`missing "path"`)
	}
	return nil
}

// Serve runs the protocol after the handshake: it answers every request line read from
// in with one line per item on out, until in ends. Bad lines are answered with an error
// line (id null, or the id when it could be read) and serving goes on.
func Serve(d *Detector, in io.Reader, out io.Writer) error {
	r := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriter(out)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		line, tooLong, err := readLine(r)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			var answers []Answer
			if tooLong {
				answers = []Answer{{ID: nullID, Error: fmt.Sprintf("bad request line: longer than %d bytes", maxLine)}}
			} else if items, perr := ParseRequest(line); perr != nil {
				answers = []Answer{{ID: idOf(line), Error: perr.Error()}}
			} else {
				answers = predict(d, items)
			}
			for _, a := range answers {
				if e := enc.Encode(a); e != nil {
					return fmt.Errorf("write answer: %w", e)
				}
			}
			if e := w.Flush(); e != nil {
				return fmt.Errorf("write answer: %w", e)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
	}
}

// readLine returns the next line without its newline; a line longer than maxLine is
// consumed and reported as tooLong.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, isPrefix, e := r.ReadLine()
		if !tooLong {
			line = append(line, chunk...)
			if len(line) > maxLine {
				line, tooLong = nil, true
			}
		}
		if e != nil || !isPrefix {
			return line, tooLong, e
		}
	}
}

// idOf digs the id out of a request line that failed to parse, so the runner can still
// match the error to its input.
func idOf(line []byte) json.RawMessage {
	var probe struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(line, &probe) == nil && len(probe.ID) > 0 {
		return probe.ID
	}
	return nullID
}

// predict answers the items in order, computing up to GOMAXPROCS of them at once.
func predict(d *Detector, items []Item) []Answer {
	answers := make([]Answer, len(items))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			answers[i] = answerFor(d, it)
		}()
	}
	wg.Wait()
	return answers
}

func answerFor(d *Detector, it Item) (a Answer) {
	a.ID = it.ID
	defer func() {
		// A decoder bug on a hostile file fails that input, not the whole worker.
		if r := recover(); r != nil {
			a = Answer{ID: it.ID, Error: fmt.Sprintf("predict %s: internal error: %v", it.Path, r)}
		}
	}()
	res, err := d.DetectFile(it.Path)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	a.OK, a.Result = true, res
	return a
}
