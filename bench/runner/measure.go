package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuPerOp reads the server's CPU time from /proc around load(n), after a
// warm-up of n/10 operations of the same kind, and returns µs per operation.
func cpuPerOp(in *instance, n int, load func(n int) (int, error)) (float64, error) {
	if _, err := load(max(n/10, 50)); err != nil {
		return 0, err
	}
	before := cpuMicros(in.p.pid())
	done, err := load(n)
	after := cpuMicros(in.p.pid())
	if err != nil {
		return 0, err
	}
	if done <= 0 {
		return 0, fmt.Errorf("no operation succeeded")
	}
	return (after - before) / float64(done), nil
}

type handshakeOut struct {
	OK, Failed, Resumed int
	FirstError          string `json:"first_error"`
}

// handshakes returns a load of n TLS 1.3 handshakes with curve, or resumed ones.
func (r *runner) handshakes(in *instance, curve string, resume bool) func(int) (int, error) {
	return func(n int) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		args := []string{filepath.Join(r.bin, "loadgen"), "handshake", "-addr", in.addr, "-sni", in.sni,
			"-ca", in.ca, "-n", strconv.Itoa(n), "-c", strconv.Itoa(r.hsConc), "-curve", curve}
		if resume {
			args = append(args, "-resume")
		}
		out, err := runLoad(ctx, r.loadCore, args...)
		if err != nil {
			return 0, err
		}
		var res handshakeOut
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return 0, fmt.Errorf("loadgen said %q: %w", out, err)
		}
		if res.OK == 0 {
			return 0, fmt.Errorf("every handshake failed: %s", res.FirstError)
		}
		if res.Failed > 0 {
			return 0, fmt.Errorf("%d of %d handshakes failed: %s", res.Failed, n, res.FirstError)
		}
		if resume {
			if res.Resumed < res.OK*99/100 {
				return 0, fmt.Errorf("only %d of %d handshakes resumed", res.Resumed, res.OK)
			}
			return res.Resumed, nil
		}
		return res.OK, nil
	}
}

var (
	h2Requests = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	h2Status   = regexp.MustCompile(`status codes: (\d+) 2xx`)
)

// requests returns a load of n keep-alive requests to path with h2load,
// HTTP/1.1 or HTTP/2.
func (r *runner) requests(in *instance, path string, h2 bool) func(int) (int, error) {
	return func(n int) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		_, port, _ := net.SplitHostPort(in.addr)
		args := []string{"h2load", "-n", strconv.Itoa(n), "--connect-to", in.addr}
		if h2 {
			args = append(args, "-c", strconv.Itoa(r.h2Conns), "-m", strconv.Itoa(r.h2Streams))
		} else {
			args = append(args, "--h1", "-c", strconv.Itoa(r.h1Conns), "-m", "1")
		}
		args = append(args, fmt.Sprintf("https://%s:%s%s", in.sni, port, path))
		out, err := runLoad(ctx, r.loadCore, args...)
		if err != nil {
			return 0, err
		}
		m := h2Requests.FindStringSubmatch(out)
		s := h2Status.FindStringSubmatch(out)
		if m == nil || s == nil {
			return 0, fmt.Errorf("h2load output not understood: %s", lastLine(out))
		}
		ok, _ := strconv.Atoi(m[1])
		good, _ := strconv.Atoi(s[1])
		if ok != n || good != n {
			return 0, fmt.Errorf("h2load: %d of %d requests succeeded, %d with 2xx", ok, n, good)
		}
		return n, nil
	}
}

// idleKB starts a fresh instance of s, holds k idle TLS keep-alive
// connections open against it, and returns the growth of its resident
// memory per connection, in KiB.
func (r *runner) idleKB(s server, tag string, k int) (float64, error) {
	if s.name == "haproxy" {
		if c := min(60000, (r.fdLimit-100)/2); k > c {
			return 0, fmt.Errorf("HAProxy reserves two descriptors per connection: maxconn is %d under this machine's open-file limit of %d, which root cannot raise here", c, r.fdLimit)
		}
	}
	in, err := startRetry(r, s, tag)
	if err != nil {
		return 0, err
	}
	defer in.stop()
	path := in.staticPath
	if path == "" {
		path = in.proxyPath
	}
	hold := []string{filepath.Join(r.bin, "loadgen"), "hold", "-addr", in.addr, "-sni", in.sni, "-ca", in.ca,
		"-path", path, "-c", strconv.Itoa(r.hsConc), "-max", "5m"}
	// Warm up: 64 connections opened, used once and closed (stdin is empty).
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := runLoad(ctx, r.loadCore, append(hold, "-n", "64")...); err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	before := rssKB(in.p.pid())

	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", r.loadCore}, append(hold, "-n", strconv.Itoa(k))...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 10 * time.Second
	record("loadgen", cmd.Args, nil)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("loadgen hold: %w", err)
	}
	held, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "ready ")))
	if err != nil {
		return 0, fmt.Errorf("loadgen hold said %q", line)
	}
	if held < k*99/100 {
		return 0, fmt.Errorf("only %d of %d connections could be opened", held, k)
	}
	time.Sleep(2 * time.Second)
	after := rssKB(in.p.pid())
	if in.p.exited() {
		return 0, fmt.Errorf("%s exited while holding connections", s.name)
	}
	return (after - before) / float64(held), nil
}
