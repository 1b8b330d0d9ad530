package fleet

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pgBinDir returns the folder of initdb and pg_ctl: Debian's newest
// /usr/lib/postgresql/N/bin (15 on the CI machine), or PG_BIN_DIR.
func pgBinDir() string {
	if d := os.Getenv("PG_BIN_DIR"); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Or(len(a)-len(b), strings.Compare(a, b)) }) // "9.6" < "15"
	if len(dirs) == 0 {
		return "/usr/lib/postgresql/15/bin"
	}
	return dirs[len(dirs)-1]
}

// asPostgres runs name as the postgres user when this process is root
// (initdb refuses to run as root), else as this user.
func asPostgres(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// pgCluster is a private PostgreSQL server that a test may stop and start,
// run as the postgres user in a temporary folder, with trust authentication
// on 127.0.0.1. The shared server on 5432 is never touched.
type pgCluster struct {
	t    testing.TB
	dir  string
	port int
}

func (c *pgCluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=3", c.port)
}

// newPGCluster creates and starts a cluster, and removes it when t ends.
func newPGCluster(t testing.TB) *pgCluster {
	t.Helper()
	if _, err := os.Stat(filepath.Join(pgBinDir(), "initdb")); err != nil {
		t.Fatalf("PostgreSQL server binaries not found (set PG_BIN_DIR): %v", err)
	}
	dir, err := os.MkdirTemp("", "spine-fleet-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{t: t, dir: dir, port: freeTCPPort(t)}
	t.Cleanup(func() {
		c.pgctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 200\n", c.port, dir)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	return c
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

func (c *pgCluster) run(name string, args ...string) {
	c.t.Helper()
	name = filepath.Join(pgBinDir(), name)
	cmd := asPostgres(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func (c *pgCluster) pgctl(args ...string) error {
	cmd := asPostgres(filepath.Join(pgBinDir(), "pg_ctl"), append([]string{"-D", c.data()}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %v: %v: %s", args, err, out)
	}
	return nil
}

// Start starts the server and waits until it accepts connections.
func (c *pgCluster) Start() {
	c.t.Helper()
	if err := c.pgctl("start", "-w", "-t", "60", "-l", filepath.Join(c.dir, "log")); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("%v\n%s", err, log)
	}
}

// Stop stops the server (fast shutdown: sessions are disconnected).
func (c *pgCluster) Stop() {
	c.t.Helper()
	if err := c.pgctl("stop", "-w", "-m", "fast"); err != nil {
		c.t.Fatal(err)
	}
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		// Keep clear of the shared server and of ports it might take.
		if p != 5432 {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}
