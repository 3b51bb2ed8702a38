// Package api serves qmd's HTTP+JSON API on its Unix socket. Who is asking comes from the
// socket's peer credentials: a user sees and cancels only their own jobs, while root and
// the admin group see all.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	wire "qmd/ctl/api"
	"qmd/daemon/chem"
	"qmd/daemon/job"
	"qmd/daemon/manager"
	"qmd/daemon/store"
)

// Handler serves the API routes.
type Handler struct {
	M          *manager.Manager
	AdminGroup string
	Version    string
	// Log receives internal errors; nil discards them.
	Log *slog.Logger
	// MaxBody caps a request body; submissions carry the molecule, so it follows the
	// configured input limit plus room for the JSON around it. Zero means DefaultMaxBody,
	// not "no body", so a Handler built without it still accepts submissions.
	MaxBody int64
}

// DefaultMaxBody is the body limit when Handler.MaxBody is zero: the largest molecule the
// parsers accept, twice over for JSON escaping, plus room for the other fields.
const DefaultMaxBody = 2*chem.MaxInputBytes + 64<<10

func (h *Handler) maxBody() int64 {
	if h.MaxBody > 0 {
		return h.MaxBody
	}
	return DefaultMaxBody
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.New(slog.DiscardHandler)
}

// ServeHTTP routes a request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Browsers can reach a Unix socket only through a proxy; refuse anything that looks
	// like a cross-site request rather than trust it.
	if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
		h.fail(w, http.StatusForbidden, wire.CodeBadRequest, "requests from web pages are refused")
		return
	}
	peer, err := PeerFrom(r.Context())
	if err != nil {
		h.fail(w, http.StatusForbidden, wire.CodeBadRequest, "cannot identify the caller: "+err.Error())
		return
	}

	path := r.URL.Path
	switch {
	case path == wire.RouteVersion && r.Method == http.MethodGet:
		h.json(w, http.StatusOK, wire.Version{Version: h.Version})
	case path == wire.RouteJobs && r.Method == http.MethodGet:
		h.list(w, r, peer)
	case path == wire.RouteJobs && r.Method == http.MethodPost:
		h.submit(w, r, peer)
	case strings.HasPrefix(path, wire.RouteJob):
		rest := strings.TrimPrefix(path, wire.RouteJob)
		id, action, _ := strings.Cut(rest, "/")
		h.jobRoute(w, r, peer, id, action)
	default:
		h.fail(w, http.StatusNotFound, wire.CodeNotFound, "no such API route: "+r.Method+" "+path)
	}
}

func (h *Handler) jobRoute(w http.ResponseWriter, r *http.Request, peer Peer, id, action string) {
	if !job.ValidID(id) {
		h.fail(w, http.StatusNotFound, wire.CodeNotFound, "no job "+quote(id)+" (ids are 12 hex characters)")
		return
	}
	ctx := r.Context()
	j, hist, err := h.M.Job(ctx, id)
	if err == nil && !h.mayAccess(peer, j) {
		err = store.ErrJobNotFound // other users' jobs do not exist for this caller
	}
	if err != nil {
		h.error(w, err, id)
		return
	}

	switch {
	case action == "" && r.Method == http.MethodGet:
		h.json(w, http.StatusOK, toWire(j, hist))
	case action == "cancel" && r.Method == http.MethodPost:
		nj, err := h.M.Cancel(ctx, id, peer.UID)
		if err != nil {
			h.error(w, err, id)
			return
		}
		_, hist, _ := h.M.Job(ctx, id)
		h.json(w, http.StatusOK, toWire(nj, hist))
	case action == "result" && r.Method == http.MethodGet:
		data, err := h.M.Result(ctx, j)
		if err != nil {
			h.error(w, err, id)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(data)
	case action == "logs" && r.Method == http.MethodGet:
		logs, err := h.M.Logs(ctx, j)
		if err != nil {
			h.error(w, err, id)
			return
		}
		h.json(w, http.StatusOK, logs)
	default:
		h.fail(w, http.StatusNotFound, wire.CodeNotFound, "no such API route: "+r.Method+" "+r.URL.Path)
	}
}

func (h *Handler) mayAccess(p Peer, j job.Job) bool {
	return j.OwnerUID == p.UID || isAdmin(p.UID, h.AdminGroup)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, peer Peer) {
	f := store.Filter{}
	if !isAdmin(peer.UID, h.AdminGroup) {
		uid := peer.UID
		f.OwnerUID = &uid
	}
	for _, s := range r.URL.Query()["state"] {
		st, err := job.ParseState(s)
		if err != nil {
			h.fail(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error()+" (states: "+stateNames()+")")
			return
		}
		f.States = append(f.States, st)
	}
	jobs, err := h.M.List(r.Context(), f)
	if err != nil {
		h.error(w, err, "")
		return
	}
	h.writeJobs(w, jobs)
}

func (h *Handler) submit(w http.ResponseWriter, r *http.Request, peer Peer) {
	var req wire.SubmitRequest
	body := http.MaxBytesReader(w, r.Body, h.maxBody())
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, http.StatusRequestEntityTooLarge, wire.CodeBadRequest,
				"the submission is larger than the daemon accepts")
			return
		}
		h.fail(w, http.StatusBadRequest, wire.CodeBadRequest, "bad submission: "+err.Error())
		return
	}
	resp, err := h.M.Submit(r.Context(), peer.UID, req)
	if err != nil {
		h.error(w, err, "")
		return
	}
	status := http.StatusCreated
	if req.DryRun {
		status = http.StatusOK
	}
	h.json(w, status, resp)
}

// error maps an error to a status and code. Internal errors are logged in full and
// reported briefly.
func (h *Handler) error(w http.ResponseWriter, err error, id string) {
	var ie *manager.InputError
	var ce *chem.InputError
	switch {
	case errors.As(err, &ie), errors.As(err, &ce):
		h.fail(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error())
	case errors.Is(err, store.ErrJobNotFound):
		h.fail(w, http.StatusNotFound, wire.CodeNotFound, "no job "+quote(id)+" (or it is not yours)")
	case errors.Is(err, manager.ErrFinished):
		h.fail(w, http.StatusConflict, wire.CodeConflict, err.Error())
	case errors.Is(err, manager.ErrDraining):
		h.fail(w, http.StatusServiceUnavailable, wire.CodeDraining, err.Error())
	case errors.Is(err, context.Canceled):
		h.fail(w, http.StatusServiceUnavailable, wire.CodeDraining, "request cancelled")
	default:
		h.log().Error("request failed", "job", id, "err", err)
		h.fail(w, http.StatusInternalServerError, wire.CodeInternal, "internal error: "+err.Error())
	}
}

func (h *Handler) fail(w http.ResponseWriter, status int, code, msg string) {
	h.json(w, status, wire.ErrorResponse{Error: msg, Code: code})
}

func (h *Handler) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		h.log().Debug("write response", "err", err)
	}
}

func toWire(j job.Job, hist []job.Event) wire.Job {
	out := wire.Job{
		ID: j.ID, State: string(j.State), Cluster: j.Cluster, SchedulerID: j.SchedulerID,
		SchedulerReason: j.SchedReason,
		Name:            j.Name, Preset: j.Preset, Solvent: j.Solvent, Owner: j.OwnerUID, Level: j.Level,
		Software: j.Software, TemplateHash: j.TemplateHash, CreatedAt: j.CreatedAt,
		UpdatedAt: j.UpdatedAt, ExitCode: j.ExitCode, Kind: string(j.Kind), ParentID: j.ParentID,
	}
	if j.Error != "" {
		e := j.Error
		out.Error = &e
	}
	if hist != nil {
		out.History = make([]wire.Event, len(hist))
		for i, e := range hist {
			out.History[i] = wire.Event{At: e.At, From: string(e.From), To: string(e.To), Reason: e.Reason}
		}
	}
	return out
}

func stateNames() string {
	n := make([]string, len(job.States))
	for i, s := range job.States {
		n[i] = string(s)
	}
	return strings.Join(n, ", ")
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s) + `"`
}
