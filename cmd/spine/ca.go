package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/trust"
)

// newCATrustCmd is `spine ca trust` (install) or `spine ca untrust`.
func newCATrustCmd(g *globals, install bool) *cobra.Command {
	var (
		rootFile, update string
		cfg              trust.Config
	)
	use, short := "trust", "Add the internal CA's root to this machine's trust stores: the system's and the browsers' (NSS)"
	if !install {
		use, short = "untrust", "Remove the internal CA's root from this machine's trust stores"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + `.

The root is read from --root, else from the API (GET /v1/ca/root), else from
<data>/ca/root.pem. The system store is the distribution's (Debian and Ubuntu:
/usr/local/share/ca-certificates and update-ca-certificates; Fedora, openSUSE
and Arch are detected too) and needs root. The NSS databases are those of
--home (default $HOME; under sudo, the home of the user who ran sudo): ~/.pki/nssdb, which Chromium reads (created when
absent), and every Firefox profile; they need certutil (libnss3-tools).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if update != "" {
				cfg.SystemUpdate = strings.Fields(update)
			}
			if cfg.Home == "" {
				cfg.Home = invokingHome()
			}
			if (cfg.SystemDir == "") != (update == "") {
				return errors.New("--system-dir and --system-update: give both, or neither to use the system's own store")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			root, from, err := g.caRoot(ctx, rootFile)
			if err != nil {
				return err
			}
			var res []trust.Result
			if install {
				res, err = trust.Install(ctx, root, cfg)
			} else {
				res, err = trust.Uninstall(ctx, root, cfg)
			}
			if errors.Is(err, trust.ErrNotRoot) {
				return fmt.Errorf("%s is not a root certificate (a self-signed CA); give the internal CA's root with --root", from)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "root %q (from %s)\n", trust.Name(root), from)
			for _, r := range res {
				what := map[string]string{"system": "system trust store", "nss": "NSS database"}[r.Store]
				switch {
				case r.Err != nil:
					fmt.Fprintf(out, "  ✗ %s %s: %v\n", what, r.Path, r.Err)
				case r.Changed && install:
					fmt.Fprintf(out, "  ✓ %s %s: added (%s)\n", what, r.Path, r.Detail)
				case r.Changed:
					fmt.Fprintf(out, "  ✓ %s %s: removed (%s)\n", what, r.Path, r.Detail)
				case install:
					fmt.Fprintf(out, "  ✓ %s %s: already there (%s)\n", what, r.Path, r.Detail)
				default:
					fmt.Fprintf(out, "  ✓ %s %s: not there (%s)\n", what, r.Path, r.Detail)
				}
			}
			if err != nil {
				return fmt.Errorf("some trust stores were not changed (see above): %w", err)
			}
			if install {
				fmt.Fprintln(out, "Restart browsers that are open for them to see the change.")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rootFile, "root", "", "the root certificate (PEM file); default: from the API, else <data>/ca/root.pem")
	f.StringVar(&cfg.Home, "home", "", "home folder whose NSS databases (browsers) change (default $HOME; under sudo, $SUDO_USER's)")
	f.BoolVar(&cfg.NoSystem, "no-system", false, "leave the system trust store alone")
	f.BoolVar(&cfg.NoNSS, "no-nss", false, "leave the NSS databases (browsers) alone")
	f.StringVar(&cfg.SystemDir, "system-dir", "", "folder of the system store's extra roots (default: detected)")
	f.StringVar(&update, "system-update", "", "command that rebuilds the system store from --system-dir, with its arguments")
	return cmd
}

// invokingHome is the home folder of the user who ran the command: under
// sudo, the user who ran sudo (whose browsers are meant), not root's.
func invokingHome() string {
	if os.Geteuid() == 0 {
		if name := os.Getenv("SUDO_USER"); name != "" && name != "root" {
			if u, err := user.Lookup(name); err == nil && u.HomeDir != "" {
				return u.HomeDir
			}
		}
	}
	home, _ := os.UserHomeDir()
	return home
}

// caRoot returns the internal CA's root: from file, else the API, else the
// data folder; and where it came from.
func (g *globals) caRoot(ctx context.Context, file string) (*x509.Certificate, string, error) {
	var (
		pemBytes []byte
		from     string
	)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", fmt.Errorf("--root: %w", err)
		}
		pemBytes, from = b, file
	} else {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b, err := client.New(strings.TrimSuffix(g.api, "/"), "").CARoot(actx)
		cancel()
		if err == nil {
			pemBytes, from = b, g.api+"/v1/ca/root"
		} else {
			path := filepath.Join(g.data, "ca", "root.pem")
			b, ferr := os.ReadFile(path)
			if ferr != nil {
				return nil, "", fmt.Errorf("no root certificate: the API at %s did not give one (%v) and %s cannot be read (%v); run this where `spine up` runs, or pass --api, --data or --root", g.api, err, path, ferr)
			}
			pemBytes, from = b, path
		}
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, "", fmt.Errorf("%s holds no PEM certificate", from)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", from, err)
	}
	return c, from, nil
}
