// Command qmctl is the user's command line for qmd. All behaviour lives in qmd/ctl/cli so
// it can be tested in-process; main only wires the process to it and turns Ctrl-C into a
// cancelled context, letting a long "qmctl wait" stop cleanly with a message.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"qmd/ctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
