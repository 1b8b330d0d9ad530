package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

type figure struct {
	key, label, unit string
	spine            bool // Spine-only
}

var figures = []figure{
	{key: "hs_x25519", label: "Full TLS 1.3 handshake, X25519", unit: "µs CPU"},
	{key: "hs_mlkem", label: "Full TLS 1.3 handshake, X25519MLKEM768", unit: "µs CPU"},
	{key: "hs_resumed", label: "Resumed TLS 1.3 handshake (PSK + X25519)", unit: "µs CPU"},
	{key: "ka_static_h1", label: "Keep-alive request, static answer, HTTP/1.1", unit: "µs CPU"},
	{key: "ka_static_h2", label: "Keep-alive request, static answer, HTTP/2", unit: "µs CPU"},
	{key: "ka_proxy_h1", label: "Keep-alive request, proxied, HTTP/1.1", unit: "µs CPU"},
	{key: "ka_proxy_h2", label: "Keep-alive request, proxied, HTTP/2", unit: "µs CPU"},
}

// spineFigures are added as spineScale measures them.
var spineFigures = []figure{
	{key: "spine_new_host", label: "Time to HTTPS for a new hostname (internal CA; `service create --wait`)", unit: "ms", spine: true},
}

func addSpineFigure(f figure) {
	if !slices.ContainsFunc(spineFigures, func(g figure) bool { return g.key == f.key }) {
		spineFigures = append(spineFigures, f)
	}
}

// results are the values of every figure per server, with the reason for
// each figure a server has no value for.
type results struct {
	vals    map[string]map[string][]float64
	notes   map[string]map[string]string
	skipped map[string]string
}

func newResults() *results {
	return &results{vals: map[string]map[string][]float64{}, notes: map[string]map[string]string{}, skipped: map[string]string{}}
}

func (r *results) add(key, server string, v float64) {
	if r.vals[key] == nil {
		r.vals[key] = map[string][]float64{}
	}
	r.vals[key][server] = append(r.vals[key][server], v)
}

func (r *results) note(key, server, why string) {
	if r.notes[key] == nil {
		r.notes[key] = map[string]string{}
	}
	if _, ok := r.notes[key][server]; !ok {
		r.notes[key][server] = why
	}
}

func (r *results) fail(key, server string, err error) { r.note(key, server, err.Error()) }

func (r *results) skip(server, why string) { r.skipped[server] = why }

// cell is "median (min–max)" over the repetitions.
func cell(vs []float64, unit string) string {
	if len(vs) == 0 {
		return ""
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	var med float64
	if n := len(s); n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	format := "%.1f"
	if unit == "s" || unit == "ms" && med < 10 {
		format = "%.2f"
	}
	if len(s) == 1 {
		return fmt.Sprintf(format, med)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", med, s[0], s[len(s)-1])
}

func (r *runner) report(servers []server, mode string, took time.Duration) string {
	var b strings.Builder
	now := time.Now()
	fmt.Fprintf(&b, "# Spine side-by-side benchmark, %s\n\n", now.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Mode %s, %d repetitions (servers alternate, order rotated each repetition); took %s.\n", mode, r.reps, took.Round(time.Second))
	fmt.Fprintf(&b, "Each cell: median (min–max) over the repetitions. Server on core %s, load generator and upstream on core %s.\n", r.serverCore, r.loadCore)
	fmt.Fprintf(&b, "Work per measurement: %d handshakes (%d concurrent); %d static and %d proxied requests (HTTP/1.1: %d connections, 1 request in flight each; HTTP/2: %d connections × %d streams).\n\n",
		r.hsN, r.hsConc, r.staticN, r.proxyN, r.h1Conns, r.h2Conns, r.h2Streams)

	fmt.Fprintf(&b, "## Machine\n\n")
	for _, l := range machine() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	for _, l := range versions(r.spineBin) {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	if len(r.spineFlags) > 0 {
		fmt.Fprintf(&b, "- spine serve flags added: `%s`\n", strings.Join(r.spineFlags, " "))
	}

	if !r.scaleOnly {
		r.perOperation(&b, servers)
	}

	b.WriteString("\n## Spine only\n\n")
	if why, ok := r.res.skipped["spine"]; ok {
		fmt.Fprintf(&b, "Not measured: %s\n", why)
	} else {
		b.WriteString("| figure | unit | spine |\n|---|---|---|\n")
		for _, f := range spineFigures {
			c := cell(r.res.vals[f.key]["spine"], f.unit)
			if c == "" {
				c = "n/a: " + r.res.notes[f.key]["spine"]
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", f.label, f.unit, c)
		}
	}

	b.WriteString("\n## Commands (first of each kind, as run)\n\n```\n")
	commands.Lock()
	for _, l := range commands.lines {
		b.WriteString(strings.ReplaceAll(l, r.work, "$WORK") + "\n")
	}
	commands.Unlock()
	b.WriteString("```\n")
	return b.String()
}

// perOperation writes the side-by-side table.
func (r *runner) perOperation(b *strings.Builder, servers []server) {
	fmt.Fprintf(b, "\n## Per operation\n\n| figure | unit |")
	for _, s := range servers {
		fmt.Fprintf(b, " %s |", s.name)
	}
	fmt.Fprintf(b, "\n|---|---|")
	for range servers {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	var footnotes []string
	mark := func(why string) string {
		i := slices.Index(footnotes, why)
		if i < 0 {
			footnotes = append(footnotes, why)
			i = len(footnotes) - 1
		}
		return fmt.Sprintf("n/a [%d]", i+1)
	}
	for _, f := range figures {
		fmt.Fprintf(b, "| %s | %s |", f.label, f.unit)
		for _, s := range servers {
			c := cell(r.res.vals[f.key][s.name], f.unit)
			if c == "" {
				why := r.res.notes[f.key][s.name]
				if sk, ok := r.res.skipped[s.name]; ok {
					why = sk
				}
				if why == "" {
					why = "not measured"
				}
				c = mark(s.name + ": " + why)
			}
			fmt.Fprintf(b, " %s |", c)
		}
		b.WriteString("\n")
	}
	if len(footnotes) > 0 {
		b.WriteString("\n")
		for i, n := range footnotes {
			fmt.Fprintf(b, "[%d] %s  \n", i+1, explain(n))
		}
	}
}

// explain adds why a figure cannot exist for a server, where that is known.
func explain(note string) string {
	switch {
	case strings.HasPrefix(note, "nginx: ") && strings.Contains(note, "handshake failure"),
		strings.HasPrefix(note, "haproxy: ") && strings.Contains(note, "handshake failure"):
		return note + " (Debian 12's OpenSSL 3.0 has no X25519MLKEM768; OpenSSL has ML-KEM from 3.5)"
	case strings.HasPrefix(note, "caddy: ") && strings.Contains(note, "handshake failure"):
		return note + " (Debian 12's Caddy 2.6.2 is built with Go 1.19; crypto/tls has X25519MLKEM768 from Go 1.24)"
	}
	return note
}

func machine() []string {
	out := func(name string, args ...string) string {
		b, err := exec.Command(name, args...).Output()
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	model := "?"
	for _, l := range strings.Split(out("lscpu"), "\n") {
		if v, ok := strings.CutPrefix(l, "Model name:"); ok {
			model = strings.TrimSpace(v)
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Join(strings.Fields(strings.SplitN(string(b), "\n", 2)[0])[1:], " ")
	}
	debian := "?"
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		debian = strings.TrimSpace(string(b))
	}
	return []string{
		fmt.Sprintf("CPU: %s, %s cores (%s)", model, out("nproc"), hypervisor(out("lscpu"))),
		"memory: " + mem,
		"kernel: " + out("uname", "-sr") + ", Debian " + debian,
	}
}

func hypervisor(lscpu string) string {
	for _, l := range strings.Split(lscpu, "\n") {
		if v, ok := strings.CutPrefix(l, "Hypervisor vendor:"); ok {
			return "virtual machine, " + strings.TrimSpace(v)
		}
	}
	return "bare metal"
}

func dialTCP(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }

// holdFigures adds the memory figures. A server needs a descriptor per held
// connection and a few more, so counts above the open-file limit are
// lowered to what fits, and the label says so.
func (r *runner) holdFigures() {
	for i, k := range r.holds {
		label := fmt.Sprintf("Resident memory per idle TLS connection, %d held", k)
		if fit := (r.fdLimit - 500) / 1000 * 1000; k > fit {
			label = fmt.Sprintf("Resident memory per idle TLS connection, %d held (%d asked; open-file limit %d)", fit, k, r.fdLimit)
			k = fit
			r.holds[i] = k
		}
		figures = append(figures, figure{key: "idle_" + strconv.Itoa(k), label: label, unit: "KiB"})
	}
}
