// Package client talks to qmd over its Unix socket. It is kept separate from the command
// line so that other tools (notebooks' helpers, site scripts) can drive qmd with typed
// calls, and it imports only the standard library and qmd/ctl/api so that anything
// linking it stays free of the daemon's SQLite, SSH and metrics dependencies.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"qmd/ctl/api"
)

// Sentinels let callers branch on what went wrong without parsing messages. The API ones
// match an *APIError through its Is method; ErrUnreachable is wrapped by connect failures.
var (
	// ErrUnreachable means no connection could be made to the socket: the daemon is not
	// running, the path is wrong, or the caller may not open it.
	ErrUnreachable = errors.New("cannot reach qmd")
	ErrNotFound    = errors.New("not found")   // code not_found: no such job, or not ours
	ErrConflict    = errors.New("conflict")    // code conflict: the job's state forbids it
	ErrBadRequest  = errors.New("bad request") // code bad_request: the input was refused
	ErrDraining    = errors.New("draining")    // code draining: qmd is shutting down
	ErrInternal    = errors.New("internal")    // code internal or an unknown code
)

// maxAnswer bounds how much of an answer is read. Logs are the largest answers and the
// daemon already sends only their tails, so anything bigger is a fault worth refusing
// rather than a reason to exhaust a shared login node's memory.
const maxAnswer = 64 << 20

// defaultTimeout bounds one request when the caller brings no http.Client of its own, so
// a wedged daemon makes qmctl fail instead of hang. Long waits are loops of short calls.
const defaultTimeout = 2 * time.Minute

// APIError is a non-2xx answer from qmd. Code is always set: when the body carries none
// (a proxy, a crash page) it is derived from Status so that errors.Is still works.
type APIError struct {
	Status  int
	Code    string
	Message string
}

// Error returns the daemon's own message, which is written for people.
func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("qmd answered %d (%s)", e.Status, e.Code)
	}
	return e.Message
}

// Is maps the wire code to the package's sentinels, so callers never compare strings.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == api.CodeNotFound
	case ErrConflict:
		return e.Code == api.CodeConflict
	case ErrBadRequest:
		return e.Code == api.CodeBadRequest
	case ErrDraining:
		return e.Code == api.CodeDraining
	case ErrInternal:
		switch e.Code {
		case api.CodeNotFound, api.CodeConflict, api.CodeBadRequest, api.CodeDraining:
			return false
		}
		return true
	}
	return false
}

// Client calls qmd's API on the Unix socket at Socket. Its zero value with Socket set is
// ready to use. HTTP is optional: when nil, or when its Transport is nil, a transport that
// dials Socket is used; a non-nil Transport is used as given, which lets tests and callers
// with special needs route requests themselves.
type Client struct {
	Socket string
	HTTP   *http.Client
}

// Submit sends a molecule (its contents, never a path) and returns the new job ids, or the
// rendered inputs for a dry run.
func (c *Client) Submit(ctx context.Context, req api.SubmitRequest) (api.SubmitResponse, error) {
	var out api.SubmitResponse
	err := c.send(ctx, http.MethodPost, api.RouteJobs, req, &out)
	return out, err
}

// List returns the caller's jobs, restricted to the given states when any are given.
func (c *Client) List(ctx context.Context, states []string) ([]api.Job, error) {
	path := api.RouteJobs
	if len(states) > 0 {
		q := url.Values{"state": states}
		path += "?" + q.Encode()
	}
	var out []api.Job
	err := c.send(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// ListJSON returns the caller's jobs as the JSON array qmd sent, undecoded. Printing a
// list as JSON needs no decoding, and for thousands of jobs decoding is most of the cost.
func (c *Client) ListJSON(ctx context.Context, states []string) ([]byte, error) {
	path := api.RouteJobs
	if len(states) > 0 {
		q := url.Values{"state": states}
		path += "?" + q.Encode()
	}
	var raw []byte
	if err := c.send(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return nil, err
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("reading qmd's answer to GET %s: not valid JSON", path)
	}
	return raw, nil
}

// Get returns one job with its history.
func (c *Client) Get(ctx context.Context, id string) (api.Job, error) {
	var out api.Job
	err := c.send(ctx, http.MethodGet, jobPath(id, ""), nil, &out)
	return out, err
}

// Cancel asks qmd to cancel a job and returns the job as it stands afterwards.
func (c *Client) Cancel(ctx context.Context, id string) (api.Job, error) {
	var out api.Job
	err := c.send(ctx, http.MethodPost, jobPath(id, "cancel"), nil, &out)
	return out, err
}

// Result returns a completed job's shifts; ErrConflict if the job has not completed.
func (c *Client) Result(ctx context.Context, id string) (api.Result, error) {
	var out api.Result
	err := c.send(ctx, http.MethodGet, jobPath(id, "result"), nil, &out)
	return out, err
}

// Logs returns a job's log files (possibly only their tails).
func (c *Client) Logs(ctx context.Context, id string) (api.Logs, error) {
	var out api.Logs
	err := c.send(ctx, http.MethodGet, jobPath(id, "logs"), nil, &out)
	return out, err
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (api.Version, error) {
	var out api.Version
	err := c.send(ctx, http.MethodGet, api.RouteVersion, nil, &out)
	return out, err
}

// jobPath escapes the id so that a stray slash or question mark in user input cannot
// address a different route than the one the caller meant.
func jobPath(id, action string) string {
	p := api.RouteJob + url.PathEscape(id)
	if action != "" {
		p += "/" + action
	}
	return p
}

// send is the one place requests are made, so that connection failures, error bodies and
// decoding are handled the same way for every call.
func (c *Client) send(ctx context.Context, method, path string, body, out any) error {
	if c.Socket == "" {
		return fmt.Errorf("%w: no socket path set", ErrUnreachable)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	// The host is a placeholder: the transport dials the socket whatever the URL says.
	req, err := http.NewRequestWithContext(ctx, method, "http://qmd"+path, rd)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "qmd-client")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.httpClient().Do(req)
	if err != nil {
		return c.transportError(ctx, err)
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, maxAnswer)

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return readAPIError(resp.StatusCode, lr)
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		b, err := io.ReadAll(lr)
		if err != nil {
			return fmt.Errorf("reading qmd's answer to %s %s: %w", method, path, err)
		}
		*raw = b
		return nil
	}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		return fmt.Errorf("reading qmd's answer to %s %s: %w", method, path, err)
	}
	return nil
}

// transportError separates "nobody is listening" (wrapped in ErrUnreachable, naming the
// socket so the user can see which path was tried) from failures after connecting and
// from the caller giving up.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w at %s: %w", ErrUnreachable, c.Socket, op.Err)
	}
	return fmt.Errorf("talking to qmd at %s: %w", c.Socket, err)
}

// readAPIError decodes an error body. Anything that is not an api.ErrorResponse still
// yields an APIError, with the start of the body as its message.
func readAPIError(status int, r io.Reader) error {
	raw, _ := io.ReadAll(io.LimitReader(r, 64<<10))
	e := &APIError{Status: status}
	var body api.ErrorResponse
	if json.Unmarshal(raw, &body) == nil && (body.Error != "" || body.Code != "") {
		e.Code, e.Message = body.Code, body.Error
	} else {
		msg := strings.TrimSpace(string(raw))
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		if msg == "" {
			msg = http.StatusText(status)
		}
		e.Message = msg
	}
	if e.Code == "" {
		e.Code = codeForStatus(status)
	}
	return e
}

// codeForStatus guesses the code from the HTTP status when the body carried none.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge,
		http.StatusUnprocessableEntity:
		return api.CodeBadRequest
	case http.StatusNotFound, http.StatusForbidden:
		return api.CodeNotFound
	case http.StatusConflict:
		return api.CodeConflict
	case http.StatusServiceUnavailable:
		return api.CodeDraining
	}
	return api.CodeInternal
}

// httpClient returns the caller's client, or one whose transport dials the socket. The
// default transport keeps no idle connections: qmctl makes a handful of calls and exits,
// and a fresh Client per call must not leak sockets.
func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil && c.HTTP.Transport != nil {
		return c.HTTP
	}
	var hc http.Client
	if c.HTTP != nil {
		hc = *c.HTTP
	} else {
		hc.Timeout = defaultTimeout
	}
	socket := c.Socket
	hc.Transport = &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &hc
}
