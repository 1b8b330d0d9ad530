package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/inspect"
)

// exitError ends the program with a status of its own, after the command
// has printed its report.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func newInspectCmd(g *globals) *cobra.Command {
	var (
		cas        []string
		serverName string
		resolver   string
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "inspect URL|HOST[:PORT] [--ca FILE] [--servername NAME] [--resolver HOST:PORT]",
		Short: "Connect to an HTTPS server and explain each step of the handshake with its real values",
		Long: `Connect to an HTTPS server as a client and explain each step, with the real values of
that connection: DNS, TCP, the ClientHello and ServerHello as sent, the certificate chain,
its verification step by step, the key exchange, session resumption, the HTTP answer, and
the time each took. Roots are trusted from --ca files, Spine's root (<data>/ca/root.pem)
and the system's store. With an API token at hand (SPINE_TOKEN or <data>/admin.token), a
name Spine serves also gets Spine's view of its certificate.

Exit status: 0 verified; 1 bad arguments; 2 no connection (DNS, TCP, handshake, no HTTP
answer); 3 not trustworthy (the certificate failed verification, or the server speaks
only TLS 1.0 or 1.1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: give a positive duration, e.g. 30s", timeout)
			}
			if resolver != "" {
				if _, port, err := net.SplitHostPort(resolver); err != nil || port == "" {
					return fmt.Errorf("--resolver %q: write HOST:PORT, e.g. 127.0.0.1:53", resolver)
				}
			}
			target, err := inspect.ParseTarget(args[0], serverName)
			if err != nil {
				return err
			}
			cfg := inspect.Config{Resolver: resolver, Timeout: timeout, UserAgent: "spine-inspect/" + spineVersion()}
			for _, f := range cas {
				src, err := readRoots("--ca "+f, f)
				if err != nil {
					return fmt.Errorf("--ca: %w", err)
				}
				cfg.Roots = append(cfg.Roots, src)
			}
			spineRoot := filepath.Join(g.data, "ca", "root.pem")
			if src, err := readRoots("Spine's root ("+spineRoot+")", spineRoot); err == nil {
				cfg.Roots = append(cfg.Roots, src)
			}
			if c, err := g.client(); err == nil {
				cfg.Spine = c
			}
			r := inspect.Run(cmd.Context(), target, cfg)
			if g.output == "json" {
				err = r.WriteJSON(cmd.OutOrStdout())
			} else {
				err = r.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if r.Result.ExitCode != inspect.ExitOK {
				return &exitError{code: r.Result.ExitCode, msg: "inspect: " + r.Result.Message}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&cas, "ca", nil, "PEM file of roots to trust besides the system's (repeatable)")
	cmd.Flags().StringVar(&serverName, "servername", "", "name to send in SNI and check the certificate against (default: the host)")
	cmd.Flags().StringVar(&resolver, "resolver", "", "DNS server to ask, HOST:PORT (default: /etc/hosts, then /etc/resolv.conf's first)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "bound on the whole inspection")
	return cmd
}

// readRoots reads the certificates of a PEM file.
func readRoots(name, path string) (inspect.RootSource, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return inspect.RootSource{}, fmt.Errorf("%s does not exist: give the path of a PEM file of root certificates", path)
		}
		return inspect.RootSource{}, fmt.Errorf("reading %s: %w", path, err)
	}
	src := inspect.RootSource{Name: name}
	for {
		var p *pem.Block
		p, b = pem.Decode(b)
		if p == nil {
			break
		}
		if p.Type != "CERTIFICATE" {
			continue // a key in the same file is skipped, never shown
		}
		c, err := x509.ParseCertificate(p.Bytes)
		if err != nil {
			return inspect.RootSource{}, fmt.Errorf("%s holds a certificate that does not parse: %w", path, err)
		}
		src.Certs = append(src.Certs, c)
	}
	if len(src.Certs) == 0 {
		return inspect.RootSource{}, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path)
	}
	return src, nil
}
