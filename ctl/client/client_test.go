package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"qmd/ctl/api"
)

// serve answers on a Unix socket in a temporary directory with h and records each
// request's method and raw (still escaped) URI.
func serve(t *testing.T, h http.HandlerFunc) (string, func() []string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "q.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI)
		mu.Unlock()
		h(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func TestRoutesAndDecoding(t *testing.T) {
	sock, seen := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == api.RouteVersion:
			io.WriteString(w, `{"version":"1.0","commit":"abc"}`)
		case r.Method == http.MethodPost && r.URL.Path == api.RouteJobs:
			b, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(b), `"content":"3\n`) {
				http.Error(w, `{"error":"no content","code":"bad_request"}`, 400)
				return
			}
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"abc"}`)
		case r.URL.Path == api.RouteJobs:
			io.WriteString(w, `[{"id":"a","state":"running"}]`)
		default:
			io.WriteString(w, `{"id":"a","state":"cancelled"}`)
		}
	})
	c := &Client{Socket: sock}
	ctx := context.Background()

	if v, err := c.Version(ctx); err != nil || v.Version != "1.0" || v.Commit != "abc" {
		t.Errorf("Version = %+v, %v", v, err)
	}
	if r, err := c.Submit(ctx, api.SubmitRequest{Content: "3\nx\n"}); err != nil || r.ID != "abc" {
		t.Errorf("Submit = %+v, %v", r, err)
	}
	if jobs, err := c.List(ctx, []string{"running", "pending"}); err != nil || len(jobs) != 1 {
		t.Errorf("List = %+v, %v", jobs, err)
	}
	if _, err := c.List(ctx, nil); err != nil {
		t.Error(err)
	}
	if j, err := c.Cancel(ctx, "a/b?c"); err != nil || j.State != "cancelled" {
		t.Errorf("Cancel = %+v, %v", j, err)
	}
	for _, call := range []func() error{
		func() error { _, err := c.Get(ctx, "a"); return err },
		func() error { _, err := c.Result(ctx, "a"); return err },
		func() error { _, err := c.Logs(ctx, "a"); return err },
	} {
		if err := call(); err != nil {
			t.Error(err)
		}
	}
	want := []string{
		"GET /v1/version",
		"POST /v1/jobs",
		"GET /v1/jobs?state=running&state=pending",
		"GET /v1/jobs",
		"POST /v1/jobs/a%2Fb%3Fc/cancel", // the id cannot reach another route
		"GET /v1/jobs/a",
		"GET /v1/jobs/a/result",
		"GET /v1/jobs/a/logs",
	}
	if got := seen(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAPIErrors(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		code    string
		msg     string
		is, not error
	}{
		{404, `{"error":"no job x","code":"not_found"}`, "not_found", "no job x",
			ErrNotFound, ErrConflict},
		{409, `{"error":"job x is running","code":"conflict"}`, "conflict",
			"job x is running", ErrConflict, ErrNotFound},
		{400, `{"error":"bad preset","code":"bad_request"}`, "bad_request", "bad preset",
			ErrBadRequest, ErrInternal},
		{503, `{"error":"stopping","code":"draining"}`, "draining", "stopping",
			ErrDraining, ErrBadRequest},
		{500, `{"error":"boom","code":"internal"}`, "internal", "boom",
			ErrInternal, ErrNotFound},
		// Bodies that are not ErrorResponse still give a usable error.
		{404, "404 page not found\n", "not_found", "404 page not found",
			ErrNotFound, ErrInternal},
		{502, "", "internal", "Bad Gateway", ErrInternal, ErrDraining},
		{418, `{"error":"odd","code":"teapot"}`, "teapot", "odd", ErrInternal, ErrNotFound},
	}
	for _, tc := range cases {
		sock, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		_, err := (&Client{Socket: sock}).Get(context.Background(), "x")
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Errorf("%d %q: error %v is not an *APIError", tc.status, tc.body, err)
			continue
		}
		if ae.Status != tc.status || ae.Code != tc.code || ae.Message != tc.msg {
			t.Errorf("%d %q: got %+v", tc.status, tc.body, *ae)
		}
		if !errors.Is(err, tc.is) || errors.Is(err, tc.not) {
			t.Errorf("%d %q: Is(%v) must hold and Is(%v) must not", tc.status, tc.body,
				tc.is, tc.not)
		}
	}
}

func TestUnreachableNamesSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	_, err := (&Client{Socket: sock}).Version(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), sock) {
		t.Errorf("error %v should wrap ErrUnreachable and name %s", err, sock)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v should keep the cause", err)
	}
	if _, err := (&Client{}).Version(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("no socket: %v", err)
	}
}

// TestCallerHTTPClient checks that a caller's http.Client without a transport still
// dials the socket, and that its settings (here a timeout) are kept.
func TestCallerHTTPClient(t *testing.T) {
	sock, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(200 * time.Millisecond)
		io.WriteString(w, `{"version":"1"}`)
	})
	c := &Client{Socket: sock, HTTP: &http.Client{Timeout: 20 * time.Millisecond}}
	if _, err := c.Version(context.Background()); err == nil ||
		errors.Is(err, ErrUnreachable) {
		t.Errorf("want a timeout after connecting, got %v", err)
	}
	c.HTTP.Timeout = 0
	if v, err := c.Version(context.Background()); err != nil || v.Version != "1" {
		t.Errorf("Version = %+v, %v", v, err)
	}
}

func TestCancelledContext(t *testing.T) {
	sock, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Second)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := (&Client{Socket: sock}).Version(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the context's error", err)
	}
}

func TestGarbledAnswer(t *testing.T) {
	sock, _ := serve(t, func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "<html>")
	})
	_, err := (&Client{Socket: sock}).Version(context.Background())
	var ae *APIError
	if err == nil || errors.As(err, &ae) || errors.Is(err, ErrUnreachable) {
		t.Errorf("got %v, want a decoding error", err)
	}
}
