package etcdsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/secitem"
)

// testEtcd is a real etcd server, embedded in the test process on
// loopback, with its data in a temporary directory.
type testEtcd struct {
	t          testing.TB
	dir        string
	peer, cl   url.URL
	srv        *embed.Etcd
	endpoint   string
	restarting bool
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startEtcd(t testing.TB) *testEtcd {
	t.Helper()
	// A port found free can be taken before etcd binds it (by another
	// test binary's outgoing connection, say): try again on new ones.
	for attempt := 1; ; attempt++ {
		e := &testEtcd{t: t, dir: t.TempDir()}
		e.cl = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		e.peer = url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		e.endpoint = e.cl.String()
		err := e.tryStart()
		if err == nil {
			t.Cleanup(e.stop)
			return e
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("etcd: %v", err)
		}
	}
}

func (e *testEtcd) start() {
	e.t.Helper()
	if err := e.tryStart(); err != nil {
		e.t.Fatalf("etcd: %v", err)
	}
}

// tryStart starts the server on e's ports and data, and waits until it is
// ready.
func (e *testEtcd) tryStart() error {
	cfg := embed.NewConfig()
	cfg.Name = "test"
	cfg.Dir = filepath.Join(e.dir, "data")
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{filepath.Join(e.dir, "etcd.log")}
	cfg.ListenClientUrls = []url.URL{e.cl}
	cfg.AdvertiseClientUrls = []url.URL{e.cl}
	cfg.ListenPeerUrls = []url.URL{e.peer}
	cfg.AdvertisePeerUrls = []url.URL{e.peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if e.srv != nil || e.restarting {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	srv, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	select {
	case <-srv.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		srv.Close()
		return errors.New("etcd did not become ready")
	}
	e.srv = srv
	return nil
}

func (e *testEtcd) stop() {
	if e.srv != nil {
		e.srv.Close()
		e.srv = nil
	}
}

// restart stops the server and starts it again on the same data.
func (e *testEtcd) restart(down time.Duration) {
	e.stop()
	e.restarting = true
	time.Sleep(down)
	e.start()
}

func (e *testEtcd) client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// dumpEtcd returns every key and value under the secitemdb prefix.
func dumpEtcd(t testing.TB, cli *clientv3.Client) []byte {
	t.Helper()
	resp, err := cli.Get(t.Context(), "/secitemdb/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, kv := range resp.Kvs {
		b.Write(kv.Key)
		b.WriteByte(0)
		b.Write(kv.Value)
		b.WriteByte(0)
	}
	return b.Bytes()
}

var cheap = &protect.KDFCost{Time: 1, MemoryKiB: 64, Threads: 1}

func deviceForTests() protect.Device { return protect.NewStaticDevice(bytes.Repeat([]byte{7}, 32)) }

func t0() context.Context { return context.Background() }

func openStore(t testing.TB, path string) *secitem.DB {
	t.Helper()
	db, err := secitem.Open(path, &secitem.Options{Device: deviceForTests(), PasscodeCost: cheap})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(m.Run())
}
