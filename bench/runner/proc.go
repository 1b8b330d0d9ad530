package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the runner started in its own process group, pinned
// to one core with taskset.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// procs are every process group started and not yet stopped; stopAll and
// the pgid file (read by run.sh's EXIT trap) use it.
var procs struct {
	sync.Mutex
	m       map[int]*proc
	pgidLog string
}

// start runs argv pinned to core, with env added to the runner's, output to
// logPath. The process is the leader of a new process group, so stop ends
// its children (nginx's worker) with it.
func start(name, core string, env []string, logPath string, argv ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("taskset", append([]string{"-c", core}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	record(name, cmd.Args, env)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); logf.Close(); close(p.done) }()
	procs.Lock()
	if procs.m == nil {
		procs.m = map[int]*proc{}
	}
	procs.m[cmd.Process.Pid] = p
	if procs.pgidLog != "" {
		if f, err := os.OpenFile(procs.pgidLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, cmd.Process.Pid)
			f.Close()
		}
	}
	procs.Unlock()
	return p, nil
}

// pid is the process's id; taskset execs the program, so it is the
// program's own.
func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 10 s.
func (p *proc) stop() {
	pgid := p.pid()
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// A worker that outlived its master still belongs to the group.
	syscall.Kill(-pgid, syscall.SIGKILL)
	procs.Lock()
	delete(procs.m, pgid)
	procs.Unlock()
}

func stopAll() {
	procs.Lock()
	var ps []*proc
	for _, p := range procs.m {
		ps = append(ps, p)
	}
	procs.Unlock()
	for _, p := range ps {
		p.stop()
	}
}

// runLoad runs a load command pinned to core and returns its standard output.
func runLoad(ctx context.Context, core string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "taskset", append([]string{"-c", core}, argv...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	record(argv[0], cmd.Args, nil)
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", argv[0], err, lastLine(errb.String()))
	}
	return out.String(), nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

var digits = regexp.MustCompile(`[0-9]+`)

// commands keeps the first command line of each kind, for the report.
var commands struct {
	sync.Mutex
	seen  map[string]bool
	lines []string
}

func record(kind string, args, env []string) {
	// One line per kind of command: the same command with other counts,
	// ports or scratch paths is the same kind.
	key := digits.ReplaceAllString(strings.Join(args, " "), "")
	commands.Lock()
	defer commands.Unlock()
	if commands.seen == nil {
		commands.seen = map[string]bool{}
	}
	if commands.seen[key] {
		return
	}
	commands.seen[key] = true
	commands.lines = append(commands.lines, strings.TrimSpace(strings.Join(env, " ")+" "+strings.Join(args, " ")))
}

// tree returns root and all its descendants, from the ppid fields in /proc.
func tree(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{root}
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f := statFields(pid)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out) && i < 10000; i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name
// (which may hold spaces): [0] is the state, [1] ppid, [11] utime, [12] stime.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// clockTicks is USER_HZ, the unit of utime and stime.
var clockTicks = func() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil && v > 0 {
			return float64(v)
		}
	}
	return 100
}()

// cpuMicros is the user+system CPU time of root's process tree, in µs, as
// the kernel accounts it (all threads, live processes).
func cpuMicros(root int) float64 {
	var ticks int64
	for _, pid := range tree(root) {
		f := statFields(pid)
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return float64(ticks) / clockTicks * 1e6
}

// rssKB is the sum of VmRSS over root's process tree, in KiB.
func rssKB(root int) float64 {
	var kb float64
	for _, pid := range tree(root) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				fs := strings.Fields(rest)
				if len(fs) > 0 {
					v, _ := strconv.ParseFloat(fs[0], 64)
					kb += v
				}
			}
		}
		f.Close()
	}
	return kb
}
