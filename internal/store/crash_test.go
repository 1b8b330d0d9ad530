package store_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/spine-platform/spine/internal/store"
	"github.com/spine-platform/spine/internal/store/storetest"
)

// crashWriterEnv tells the test binary to run as the writer that
// TestKilledWriterLosesNothingAcknowledged kills.
const crashWriterEnv = "SPINE_TEST_CRASH_WRITER_DSN"

// TestMain runs the writer when asked to, and the tests otherwise.
func TestMain(m *testing.M) {
	if dsn := os.Getenv(crashWriterEnv); dsn != "" {
		crashWriter(dsn, os.Getenv(crashWriterEnv+"_PROJECT"))
		return
	}
	os.Exit(m.Run())
}

// crashWriter writes services and keys as fast as it can and prints "ack N"
// after each write the store has acknowledged, until it is killed.
func crashWriter(dsn, project string) {
	ctx := context.Background()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	must := func(err error) {
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	domain := project + ".example"
	must(db.CreateProject(ctx, store.Project{ID: project, Name: project}))
	must(db.CreateDomain(ctx, store.Domain{Name: domain, ProjectID: project, Status: store.DomainVerified, VerifyToken: "t"}))
	fmt.Println("ready")
	for i := 0; ; i++ {
		name := fmt.Sprintf("s%d", i)
		must(db.CreateService(ctx, store.Service{ID: project + "-" + name, ProjectID: project, Name: name, Domain: domain,
			Hostnames: []string{name + "." + domain}, Upstreams: []string{"http://127.0.0.1:9000"}}))
		must(db.PutKey(ctx, "crash/"+project+"/"+name, []byte(name)))
		fmt.Println("ack", i)
	}
}

// TestKilledWriterLosesNothingAcknowledged kills a process with SIGKILL in the
// middle of a stream of writes and checks that every write it was told had
// succeeded is there, whole, when the store is opened again, and that the
// store still takes writes.
func TestKilledWriterLosesNothingAcknowledged(t *testing.T) {
	for _, tc := range []struct{ name, dsn string }{
		{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "spine.db")},
		{"postgres", storetest.PostgresDSN(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := range 3 {
				project := fmt.Sprintf("p%d", round)
				acked := killWriter(t, tc.dsn, project, []int{2, 20, 50}[round])
				db, err := store.Open(context.Background(), tc.dsn)
				if err != nil {
					t.Fatalf("reopening after the kill: %v", err)
				}
				ctx := context.Background()
				for i := 0; i <= acked; i++ {
					name := fmt.Sprintf("s%d", i)
					s, err := db.GetService(ctx, project, name)
					if err != nil || len(s.Hostnames) != 1 || s.Hostnames[0] != name+"."+project+".example" {
						t.Fatalf("acknowledged service %s/%s after the kill: %+v, %v", project, name, s, err)
					}
					if v, err := db.GetKey(ctx, "crash/"+project+"/"+name); err != nil || string(v) != name {
						t.Fatalf("acknowledged key crash/%s/%s after the kill: %q, %v", project, name, v, err)
					}
				}
				// The write in flight at the kill is there whole or not at all.
				next := fmt.Sprintf("s%d", acked+1)
				if s, err := db.GetService(ctx, project, next); err == nil && len(s.Hostnames) != 1 {
					t.Fatalf("the write in flight at the kill left service %s half-stored: %+v", next, s)
				}
				t.Logf("round %d: %d acknowledged writes, all there after SIGKILL", round, acked+1)
				// The store still takes writes (the next round's writer, and this).
				if err := db.PutKey(ctx, "crash/after/"+project, []byte("ok")); err != nil {
					t.Fatalf("writing after the kill: %v", err)
				}
				db.Close()
			}
		})
	}
}

// killWriter runs crashWriter for project over dsn, kills it with SIGKILL
// once it has acknowledged write n (it is then in the middle of the next
// one, or of printing its ack), and returns the number of the last
// acknowledged write. Counting writes rather than time makes the kill come
// after as many writes on a loaded machine as on an idle one.
func killWriter(t *testing.T, dsn, project string, n int) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashWriterEnv+"="+dsn, crashWriterEnv+"_PROJECT="+project)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("writer did not start: %q", lines.Text())
	}
	acked, killed := -1, false
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
			acked, _ = strconv.Atoi(a)
		} else {
			t.Errorf("writer: %s", lines.Text())
		}
		if acked >= n && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("writer ended with %v, want SIGKILL", err)
	}
	if acked < n {
		t.Fatalf("writer acknowledged %d writes, killed after %d", acked+1, n+1)
	}
	return acked
}
