package sshrunner

import (
	"context"
	"fmt"
	"sync"

	"github.com/pkg/sftp"
)

// SFTP opens an SFTP client on the runner's connection, so copying job files costs no
// second login and counts against the same MaxSessions slots as commands. ctx bounds
// only the setup; the client lives until the returned function is called (which closes
// it and frees the slot; call it exactly once, more calls do nothing) or the connection
// drops. Errors while unconnected wrap ErrUnavailable, as Run's do.
func (r *Runner) SFTP(ctx context.Context) (*sftp.Client, func(), error) {
	cn, err := r.connection(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("sftp: %w", err)
	}
	release, err := r.acquire(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("sftp: wait for a session slot: %w", err)
	}
	sess, err := cn.openSession(ctx, release)
	if err != nil {
		return nil, nil, fmt.Errorf("sftp: %w", r.sessionError(cn, err))
	}
	fail := func(what string, err error) (*sftp.Client, func(), error) {
		sess.Close()
		release()
		return nil, nil, fmt.Errorf("sftp: %s: %w", what, linkError(cn, err))
	}

	// The subsystem request and the SFTP version exchange block without a context;
	// closing the session on ctx's end unblocks them.
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	w, err := sess.StdinPipe()
	if err != nil {
		return fail("stdin", err)
	}
	rd, err := sess.StdoutPipe()
	if err != nil {
		return fail("stdout", err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		return fail("request subsystem", err)
	}
	client, err := sftp.NewClientPipe(rd, w)
	if err != nil {
		return fail("start", err)
	}
	if !stop() {
		client.Close()
		return fail("start", ctx.Err())
	}
	done := sync.OnceFunc(func() {
		client.Close()
		sess.Close()
		release()
	})
	return client, done, nil
}
