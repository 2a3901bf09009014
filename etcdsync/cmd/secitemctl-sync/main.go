// Command secitemctl-sync joins a secitemdb store to a sync group in etcd
// and syncs it: the `sync` commands of secitemctl, which runs this program
// (it lives in the etcdsync module so that secitemctl itself needs no etcd
// client).
//
//	secitemctl-sync [flags] join      join the group; the secret is the first line of standard input
//	secitemctl-sync [flags] status    the last applied revision, pending changes, last error
//	secitemctl-sync [flags] once      one round: push the store's changes, pull the group's
//	secitemctl-sync [flags] run       sync until interrupted
//	secitemctl-sync [flags] leave     forget the group locally (etcd keeps the items)
//	secitemctl-sync dev-etcd --data DIR [--listen URL]
//	                                  a single-node etcd for trying this out
//
// Flags: --db PATH (or $SECITEM_DB), --endpoints URL[,URL] (or
// $SECITEM_ETCD), --group NAME, --passcode-stdin (the store's passcode is
// the first line of standard input, before a join's secret).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/secitemdb/secitemdb/etcdsync"
	"github.com/secitemdb/secitemdb/secitem"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("secitemctl-sync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", os.Getenv("SECITEM_DB"), "the store")
	endpoints := fs.String("endpoints", envOr("SECITEM_ETCD", "http://127.0.0.1:2379"), "etcd endpoints, comma-separated")
	group := fs.String("group", "", "the sync group")
	passcode := fs.Bool("passcode-stdin", false, "read the store's passcode from the first line of standard input")
	data := fs.String("data", "", "dev-etcd: its data directory")
	listen := fs.String("listen", "http://127.0.0.1:2379", "dev-etcd: the client URL")
	// Flags may come before or after the command.
	var cmd string
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		if cmd == "" {
			cmd = fs.Arg(0)
		} else {
			rest = append(rest, fs.Arg(0))
		}
		args = fs.Args()[1:]
	}
	if cmd == "" || len(rest) > 0 {
		fmt.Fprintln(stderr, "usage: secitemctl-sync [--db PATH] [--endpoints URLS] [--group NAME] join|status|once|run|leave")
		fmt.Fprintln(stderr, "       secitemctl-sync dev-etcd --data DIR [--listen URL]")
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "secitemctl-sync:", err)
		return 1
	}
	if cmd == "dev-etcd" {
		if err := devEtcd(*data, *listen, stdout); err != nil {
			return fail(err)
		}
		return 0
	}
	if *db == "" || *group == "" {
		return fail(errors.New("give --db (or set SECITEM_DB) and --group"))
	}
	in := bufio.NewReader(stdin)
	store, err := secitem.Open(*db, &secitem.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	if *passcode {
		line, _ := in.ReadString('\n')
		if err := store.Unlock([]byte(strings.TrimRight(line, "\r\n"))); err != nil {
			return fail(err)
		}
	}
	if cmd == "leave" {
		if err := etcdsync.Leave(store, *group); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "left %s\n", *group)
		return 0
	}
	if cmd == "status" {
		st, err := etcdsync.StoredStatus(store, *group)
		if err != nil {
			return fail(err)
		}
		printStatus(stdout, st)
		return 0
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(*endpoints, ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fail(err)
	}
	defer cli.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch cmd {
	case "join":
		line, err := in.ReadString('\n')
		secret := strings.TrimRight(line, "\r\n")
		if secret == "" {
			return fail(fmt.Errorf("the group secret is the first line of standard input (%v)", err))
		}
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := etcdsync.Join(jctx, store, cli, *group, []byte(secret)); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "joined %s\n", *group)
	case "once":
		e, err := etcdsync.Start(store, cli, *group, etcdsync.Options{Interval: time.Hour})
		if err != nil {
			return fail(err)
		}
		defer e.Close()
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := e.Sync(octx); err != nil {
			return fail(err)
		}
		printStatus(stdout, e.Status())
	case "run":
		e, err := etcdsync.Start(store, cli, *group, etcdsync.Options{})
		if err != nil {
			return fail(err)
		}
		defer e.Close()
		fmt.Fprintf(stdout, "syncing %s with %s; interrupt to stop\n", *group, *endpoints)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last string
		for {
			select {
			case <-ctx.Done():
				return 0
			case <-t.C:
				st := e.Status()
				line := fmt.Sprintf("revision %d, %d pending, pushed %d, pulled %d", st.Revision, st.Pending, st.Pushed, st.Pulled)
				if st.LastError != "" {
					line += ", error: " + st.LastError
				}
				if line != last {
					fmt.Fprintln(stdout, line)
					last = line
				}
			}
		}
	default:
		return fail(fmt.Errorf("unknown command %q", cmd))
	}
	return 0
}

func printStatus(w io.Writer, st etcdsync.Status) {
	fmt.Fprintf(w, "group     %s\nrevision  %d\npending   %d\n", st.Group, st.Revision, st.Pending)
	if st.LastError != "" {
		fmt.Fprintf(w, "error     %s\n", st.LastError)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// devEtcd runs a single-node etcd until interrupted.
func devEtcd(dir, listen string, stdout io.Writer) error {
	if dir == "" {
		return errors.New("dev-etcd needs --data DIR")
	}
	u, err := url.Parse(listen)
	if err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "error"
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*u}, []url.URL{*u}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:2380"}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	<-srv.Server.ReadyNotify()
	fmt.Fprintf(stdout, "etcd ready at %s (data in %s); interrupt to stop\n", listen, dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	select {
	case <-ctx.Done():
	case err := <-srv.Err():
		return err
	}
	return nil
}
