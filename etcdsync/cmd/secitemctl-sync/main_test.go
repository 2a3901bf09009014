package main

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/secitemdb/secitemdb/secitem"
)

func freeURL(t *testing.T) url.URL {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

func cmd(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errb)
	return out.String() + errb.String(), code
}

// join, once, status and leave against a real (embedded) etcd: an item
// added to one store reaches the other.
func TestCommands(t *testing.T) {
	dir := t.TempDir()
	// A port found free can be taken before etcd binds it (by another
	// test binary's outgoing connection, say): try again on new ones.
	var c url.URL
	var srv *embed.Etcd
	for attempt := 1; ; attempt++ {
		cfg := embed.NewConfig()
		cfg.Dir = filepath.Join(dir, fmt.Sprintf("etcd-%d", attempt))
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{filepath.Join(dir, "etcd.log")}
		var p url.URL
		c, p = freeURL(t), freeURL(t)
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{c}, []url.URL{c}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{p}, []url.URL{p}
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
		var err error
		srv, err = embed.StartEtcd(cfg)
		if err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
	defer srv.Close()
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready")
	}
	a, b := filepath.Join(dir, "a.keychain"), filepath.Join(dir, "b.keychain")
	flags := func(db string) []string { return []string{"--db", db, "--endpoints", c.String(), "--group", "team"} }
	for _, db := range []string{a, b} {
		if out, code := cmd(t, "team secret\n", append(flags(db), "join")...); code != 0 || !strings.Contains(out, "joined team") {
			t.Fatalf("join: %d %s", code, out)
		}
	}
	if out, code := cmd(t, "wrong\n", append(flags(b), "join")...); code == 0 || !strings.Contains(out, "wrong group secret") {
		t.Fatalf("join with a wrong secret: %d %s", code, out)
	}
	db, err := secitem.Open(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Add(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "db", secitem.AttrAccount: "app",
		secitem.AttrSynchronizable: true, secitem.ValueData: []byte("hunter2")}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if out, code := cmd(t, "", append(flags(a), "status")...); code != 0 || !strings.Contains(out, "pending   1") {
		t.Fatalf("status before syncing: %d %s", code, out)
	}
	if out, code := cmd(t, "", append(flags(a), "once")...); code != 0 || !strings.Contains(out, "pending   0") {
		t.Fatalf("once on a: %d %s", code, out)
	}
	// status after a sync: the etcd revision pulled up to, nothing
	// pending, no error, and never the secret.
	out, code := cmd(t, "", append(flags(a), "status")...)
	var rev int64
	for _, l := range strings.Split(out, "\n") {
		fmt.Sscanf(l, "revision  %d", &rev)
	}
	if code != 0 || rev <= 0 || !strings.Contains(out, "pending   0") || strings.Contains(out, "error") || strings.Contains(out, "hunter2") {
		t.Fatalf("status after syncing: %d %s", code, out)
	}
	if out, code := cmd(t, "", append(flags(b), "once")...); code != 0 {
		t.Fatalf("once on b: %d %s", code, out)
	}
	db, err = secitem.Open(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.CopyMatching(secitem.Dict{secitem.Class: secitem.ClassGenericPassword, secitem.AttrService: "db",
		secitem.AttrSynchronizable: true, secitem.ReturnData: true})
	db.Close()
	if err != nil || string(v.([]byte)) != "hunter2" {
		t.Fatalf("the item did not reach b: %v", err)
	}
	if out, code := cmd(t, "", append(flags(b), "leave")...); code != 0 {
		t.Fatalf("leave: %d %s", code, out)
	}
	if out, code := cmd(t, "", append(flags(b), "once")...); code == 0 || !strings.Contains(out, "not joined") {
		t.Fatalf("once after leave: %d %s", code, out)
	}
}
