package main

import (
	"errors"
	"flag"
	"os/exec"
)

func init() {
	commands["sync"] = &command{
		args:    "join|status|once|run|leave",
		summary: "sync the store's synchronizable items through etcd (runs secitemctl-sync)",
		flags:   syncFlags, run: cmdSync, nargs: [2]int{1, 1},
	}
}

var syncOpts struct{ group, etcd string }

func syncFlags(fs *flag.FlagSet) {
	fs.StringVar(&syncOpts.group, "sync-group", "", "the sync group")
	fs.StringVar(&syncOpts.etcd, "etcd", "", "etcd endpoints, comma-separated (default $SECITEM_ETCD or http://127.0.0.1:2379)")
}

// cmdSync runs secitemctl-sync, the etcdsync module's command, on this
// store: the etcd client stays out of secitemctl's (and secitemdb's)
// dependencies.
func cmdSync(e *env, g *globals, args []string) error {
	path, err := exec.LookPath("secitemctl-sync")
	if err != nil {
		return hintError{errors.New("sync needs the secitemctl-sync program, which is not on PATH"),
			"install it from this repository: go -C etcdsync install ./cmd/secitemctl-sync"}
	}
	db := g.db
	if db == "" {
		db = e.getenv(envDB)
	}
	argv := []string{"--db", db, "--group", syncOpts.group}
	if syncOpts.etcd != "" {
		argv = append(argv, "--endpoints", syncOpts.etcd)
	}
	if g.passStdin {
		argv = append(argv, "--passcode-stdin")
	}
	cmd := exec.Command(path, append(argv, args[0])...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = e.stdin, e.stdout, e.stderr
	if err := cmd.Run(); err != nil {
		var x *exec.ExitError
		if errors.As(err, &x) {
			return exitError{}
		}
		return err
	}
	return nil
}
