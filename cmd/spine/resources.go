package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/hostname"
)

func newServiceCmd(g *globals) *cobra.Command {
	svc := &cobra.Command{Use: "service", Aliases: []string{"services", "svc"}, Short: "Create, list, show and delete services"}

	var in client.ServiceCreate
	var hsts int
	var wait bool
	var timeout, every time.Duration
	var clientCAFile string
	var pageSize int
	create := &cobra.Command{
		Use:   "create NAME --upstream URL [--upstream URL...] [--domain D] [--host H...] [--client-ca FILE [--client-auth require|optional]] [--wait]",
		Short: "Create a service, served at https://NAME.DOMAIN/",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: give a positive duration, e.g. 2m", timeout)
			}
			// Names are checked here too, so the message can name the flag.
			if in.Domain != "" {
				if _, err := hostname.Normalize(in.Domain); err != nil {
					return fmt.Errorf("--domain: %w; give one of the project's domains (spine domain list)", err)
				}
			}
			for _, h := range in.Hosts {
				if _, err := hostname.Normalize(h); err != nil {
					return fmt.Errorf("--host: %w", err)
				}
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			in.Name = args[0]
			if clientCAFile != "" {
				b, err := readSmallFile(clientCAFile, maxPEMFile)
				if err != nil {
					return fmt.Errorf("--client-ca: %w", err)
				}
				in.ClientCA = string(b)
			}
			if cmd.Flags().Changed("hsts-max-age") {
				in.HSTSMaxAge = &hsts
			}
			if cmd.Flags().Changed("health-interval") {
				in.HealthInterval = every.String()
			}
			ctx, cancel := cmdContext(cmd, timeout)
			defer cancel()
			s, err := c.CreateService(ctx, in)
			if err != nil {
				return flagError(err)
			}
			out := cmd.OutOrStdout()
			if !wait {
				return g.print(out, s, func(tw *tabwriter.Writer) { serviceText(tw, s) })
			}
			root, _ := c.CARoot(ctx) // absent when the server runs no internal CA
			start := time.Now()
			if err := c.WaitServing(ctx, s, root, showStep(out)); err != nil {
				return err
			}
			fmt.Fprintf(out, "service %s is served over HTTPS (%s after create): %s\n", s.Name, time.Since(start).Round(time.Millisecond), strings.Join(s.URLs, " "))
			return nil
		},
	}
	create.Flags().StringArrayVar(&in.Upstreams, "upstream", nil, "upstream URL (repeat for several; round robin)")
	create.Flags().StringVar(&in.Domain, "domain", "", "one of the project's domains (default: the first)")
	create.Flags().StringArrayVar(&in.Hosts, "host", nil, "another hostname under the project's domains (repeatable)")
	create.Flags().IntVar(&hsts, "hsts-max-age", 31536000, "Strict-Transport-Security max-age in seconds; 0 turns HSTS off")
	create.Flags().StringVar(&in.HealthPath, "health-path", "/", "path (and query) of the upstreams' active health check")
	create.Flags().DurationVar(&every, "health-interval", 10*time.Second, "time between two health checks of each upstream (1s to 1h)")
	create.Flags().StringVar(&clientCAFile, "client-ca", "", "PEM file of the CA(s) that verify clients' certificates: the service asks every client for one (mTLS)")
	create.Flags().StringVar(&in.ClientAuth, "client-auth", "", "with --client-ca: require (default; no verified certificate, no connection) or optional (the upstream is told, X-Client-Cert-Verified)")
	create.Flags().BoolVar(&wait, "wait", false, "show each step and return when HTTPS answers")
	create.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the project's services",
		Args:  cobra.NoArgs,
		// A page at a time, each bounded by the client's 30 s, and each
		// printed before the next is asked for: a project of a million
		// services is a thousand pages, about 80 s, and the CLI holds one.
		RunE: g.withClient(listTimeout, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			if pageSize < 1 || pageSize > client.MaxServicePage {
				return fmt.Errorf("--page-size must be 1 to %d", client.MaxServicePage)
			}
			return g.printServices(cmd.OutOrStdout(), c.ServicePages(ctx, pageSize))
		}),
	}
	list.Flags().IntVar(&pageSize, "page-size", 1000, "services asked for in one request (1 to 1000); each page is printed as it arrives")
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one service",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			s, err := c.Service(ctx, args[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), s, func(tw *tabwriter.Writer) { serviceText(tw, s) })
		}),
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a service; its hostnames stop being served and renewed",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			if err := c.DeleteService(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "service %s deleted\n", args[0])
			return nil
		}),
	}
	svc.AddCommand(create, newServiceUpdateCmd(g), list, show, del)
	return svc
}

func newServiceUpdateCmd(g *globals) *cobra.Command {
	var (
		in             client.ServiceUpdate
		hsts           int
		path           string
		every, timeout time.Duration
		wait           bool
		clientCAFile   string
		clientAuth     string
	)
	cmd := &cobra.Command{
		Use:   "update NAME [--upstream URL...] [--add-host H...] [--remove-host H...] [--hsts-max-age S] [--health-path P] [--health-interval D] [--wait]",
		Short: "Change a service in place: upstreams, hostnames, HSTS, health check (no request is dropped)",
		Long: `Change a service in place. --upstream, given once or more, replaces the upstream list;
requests in flight on a removed upstream finish there. An added hostname follows the rules
of create and is served once its certificate is issued; a removed one stops being served
and renewed. Nothing changes unless the whole update is valid.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: give a positive duration, e.g. 2m", timeout)
			}
			for flag, hosts := range map[string][]string{"--add-host": in.AddHosts, "--remove-host": in.RemoveHosts} {
				for _, h := range hosts {
					if _, err := hostname.Normalize(h); err != nil {
						return fmt.Errorf("%s: %w", flag, err)
					}
				}
			}
			f := cmd.Flags()
			if f.Changed("hsts-max-age") {
				in.HSTSMaxAge = &hsts
			}
			if f.Changed("health-path") {
				in.HealthPath = &path
			}
			if f.Changed("health-interval") {
				s := every.String()
				in.HealthInterval = &s
			}
			if f.Changed("client-ca") {
				b, err := readSmallFile(clientCAFile, maxPEMFile)
				if err != nil {
					return fmt.Errorf("--client-ca: %w", err)
				}
				ca := string(b)
				in.ClientCA = &ca
			}
			if f.Changed("client-auth") {
				in.ClientAuth = &clientAuth
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, timeout)
			defer cancel()
			var before client.Service
			if wait {
				if before, err = c.Service(ctx, args[0]); err != nil {
					return err
				}
			}
			s, err := c.UpdateService(ctx, args[0], in)
			if err != nil {
				return flagErrorOf(updateFlags, err)
			}
			out := cmd.OutOrStdout()
			if !wait {
				return g.print(out, s, func(tw *tabwriter.Writer) { serviceText(tw, s) })
			}
			root, _ := c.CARoot(ctx) // absent when the server runs no internal CA
			start := time.Now()
			if err := c.WaitUpdated(ctx, before, s, root, showStep(out)); err != nil {
				return err
			}
			fmt.Fprintf(out, "service %s is served as updated (%s after the update): %s\n", s.Name, time.Since(start).Round(time.Millisecond), strings.Join(s.URLs, " "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&in.Upstreams, "upstream", nil, "upstream URL; given once or more, replaces the upstream list")
	f.StringArrayVar(&in.AddHosts, "add-host", nil, "hostname to serve too, under the project's domains (repeatable)")
	f.StringArrayVar(&in.RemoveHosts, "remove-host", nil, "hostname to stop serving (repeatable)")
	f.IntVar(&hsts, "hsts-max-age", 31536000, "Strict-Transport-Security max-age in seconds; 0 turns HSTS off")
	f.StringVar(&path, "health-path", "/", "path (and query) of the upstreams' active health check")
	f.DurationVar(&every, "health-interval", 10*time.Second, "time between two health checks of each upstream (1s to 1h)")
	f.StringVar(&clientCAFile, "client-ca", "", "PEM file of the CA(s) that verify clients' certificates (mTLS); replaces the current one")
	f.StringVar(&clientAuth, "client-auth", "", "require, optional, or off (no client certificates any more)")
	f.BoolVar(&wait, "wait", false, "show each step and return when the service is served as updated")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "how long to wait")
	return cmd
}

// showStep prints the steps of --wait.
func showStep(out io.Writer) func(client.Step) {
	return func(st client.Step) {
		if st.Err != nil {
			fmt.Fprintf(out, "  ✗ %-12s %s: %v\n", st.Name, st.Host, st.Err)
			return
		}
		fmt.Fprintf(out, "  ✓ %-12s %s: %s\n", st.Name, st.Host, st.Detail)
	}
}

// serviceFlags names the flag of `service create` that each API error code
// is about, so that the CLI's message says which one to fix.
var serviceFlags = map[string]string{
	"unknown_domain":          "--domain",
	"host_outside_domains":    "--host",
	"too_many_hosts":          "--host",
	"no_upstream":             "--upstream",
	"invalid_upstream":        "--upstream",
	"too_many_upstreams":      "--upstream",
	"proxy_loop":              "--upstream",
	"invalid_hsts":            "--hsts-max-age",
	"invalid_health_path":     "--health-path",
	"invalid_health_interval": "--health-interval",
	"invalid_client_ca":       "--client-ca",
	"invalid_client_auth":     "--client-auth",
}

// updateFlags is serviceFlags for `service update`.
var updateFlags = map[string]string{
	"host_outside_domains":    "--add-host",
	"too_many_hosts":          "--add-host",
	"host_added_and_removed":  "--add-host",
	"cannot_remove_primary":   "--remove-host",
	"not_a_host":              "--remove-host",
	"no_upstream":             "--upstream",
	"invalid_upstream":        "--upstream",
	"too_many_upstreams":      "--upstream",
	"proxy_loop":              "--upstream",
	"invalid_hsts":            "--hsts-max-age",
	"invalid_health_path":     "--health-path",
	"invalid_health_interval": "--health-interval",
	"invalid_client_ca":       "--client-ca",
	"invalid_client_auth":     "--client-auth",
}

func flagError(err error) error { return flagErrorOf(serviceFlags, err) }

func flagErrorOf(flags map[string]string, err error) error {
	var e *client.Error
	if errors.As(err, &e) {
		if flag, ok := flags[e.Code]; ok {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	return err
}

func serviceText(tw *tabwriter.Writer, s client.Service) {
	fmt.Fprintf(tw, "name:\t%s\n", s.Name)
	fmt.Fprintf(tw, "domain:\t%s\n", s.Domain)
	fmt.Fprintf(tw, "hostnames:\t%s\n", strings.Join(s.Hostnames, ", "))
	fmt.Fprintf(tw, "upstreams:\t%s\n", strings.Join(s.Upstreams, ", "))
	if s.HSTSMaxAge > 0 {
		fmt.Fprintf(tw, "hsts:\tmax-age=%d\n", s.HSTSMaxAge)
	} else {
		fmt.Fprintf(tw, "hsts:\toff\n")
	}
	fmt.Fprintf(tw, "health check:\t%s every %s\n", s.HealthPath, s.HealthInterval)
	if s.ClientAuth != "" {
		fmt.Fprintf(tw, "client certificates:\t%s (%s)\n", s.ClientAuth, caSubjects(s.ClientCA))
	}
	fmt.Fprintf(tw, "urls:\t%s\n", strings.Join(s.URLs, " "))
}

func newDomainCmd(g *globals) *cobra.Command {
	dom := &cobra.Command{Use: "domain", Aliases: []string{"domains"}, Short: "Add, list and remove the project's domains"}
	add := &cobra.Command{
		Use:   "add DOMAIN",
		Short: "Add a domain to the project",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			d, err := c.AddDomain(ctx, args[0])
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), d, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "domain %s added (%s)\n", d.Name, d.Status)
				if d.VerifyRecord != "" {
					fmt.Fprintf(tw, "\nTo prove you own it, create this DNS record, then run `spine domain verify %s`:\n\n  %s\n", d.Name, d.VerifyRecord)
				}
				printDelegation(tw, d)
			})
		}),
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the project's domains",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			ds, err := c.Domains(ctx)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), ds, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "DOMAIN\tSTATUS\tADDED")
				for _, d := range ds {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Name, d.Status, d.CreatedAt.Format(time.RFC3339))
				}
			})
		}),
	}
	remove := &cobra.Command{
		Use:   "remove DOMAIN",
		Short: "Remove a domain that no service uses",
		Args:  cobra.ExactArgs(1),
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, args []string) error {
			if err := c.RemoveDomain(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "domain %s removed\n", args[0])
			return nil
		}),
	}
	dom.AddCommand(add, list, remove, newDomainVerifyCmd(g))
	return dom
}

func newCertCmd(g *globals) *cobra.Command {
	cert := &cobra.Command{Use: "cert", Aliases: []string{"certs", "certificate"}, Short: "Certificates of the project's hostnames"}
	cert.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List every hostname's certificate: issuer, expiry and status",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			cs, err := c.Certificates(ctx)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), cs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "HOSTNAME\tSERVICE\tSTATUS\tISSUER\tNOT AFTER\tERROR")
				for _, c := range cs {
					notAfter := "-"
					if c.NotAfter != nil {
						notAfter = c.NotAfter.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Hostname, dash(c.Service), c.Status, dash(c.Issuer), notAfter, c.Error)
				}
			})
		}),
	})
	cert.AddCommand(newCertUploadCmd(g), newCertRemoveCmd(g))
	return cert
}

// maxPEMFile bounds what `cert upload` reads of each file: the API takes
// 64 KiB in all.
const maxPEMFile = 60 << 10

func newCertUploadCmd(g *globals) *cobra.Command {
	var host, certFile, keyFile, rootFile string
	cmd := &cobra.Command{
		Use:   "upload --host H --cert FILE --key FILE [--root FILE]",
		Short: "Serve your own certificate for a hostname instead of a managed one",
		Long: `Upload a certificate you bought or issued yourself for a hostname under one of the project's
verified domains. --cert holds the chain, leaf first; --key its private key (unencrypted PEM).
It is checked first (key type, key match, names, at least a day of validity, a chain to a
public root or to --root) and refused with the check that failed; then every node serves it
instead of the managed certificate, which is no longer issued or renewed for that hostname.
You renew it yourself: upload the new one the same way (events certificate.expiring at 30,
7 and 1 days before it ends).`,
		Args: cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			if _, err := hostname.Normalize(host); err != nil {
				return fmt.Errorf("--host: %w", err)
			}
			var in client.CertificateUpload
			for _, f := range []struct {
				flag, path string
				to         *string
			}{{"--cert", certFile, &in.Certificate}, {"--key", keyFile, &in.PrivateKey}, {"--root", rootFile, &in.Root}} {
				if f.path == "" {
					continue
				}
				b, err := readSmallFile(f.path, maxPEMFile)
				if err != nil {
					return fmt.Errorf("%s: %w", f.flag, err)
				}
				*f.to = string(b)
			}
			u, err := c.UploadCertificate(ctx, host, in)
			if err != nil {
				return flagErrorOf(uploadFlags, err)
			}
			return g.print(cmd.OutOrStdout(), u, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "certificate for %s uploaded; every node serves it instead of the managed one\n", u.Hostname)
				fmt.Fprintf(tw, "issuer:\t%s\n", u.Issuer)
				fmt.Fprintf(tw, "names:\t%s\n", strings.Join(u.Names, ", "))
				fmt.Fprintf(tw, "not after:\t%s\n", u.NotAfter.Format(time.RFC3339))
				fmt.Fprintf(tw, "sha256:\t%s\n", u.SHA256)
			})
		}),
	}
	f := cmd.Flags()
	f.StringVar(&host, "host", "", "the hostname to serve it for")
	f.StringVar(&certFile, "cert", "", "PEM file with the certificate chain, leaf first")
	f.StringVar(&keyFile, "key", "", "PEM file with the certificate's private key (unencrypted)")
	f.StringVar(&rootFile, "root", "", "PEM file with the root the chain builds to, when it is not a public one")
	for _, n := range []string{"host", "cert", "key"} {
		cmd.MarkFlagRequired(n)
	}
	return cmd
}

// uploadFlags names the flag of `cert upload` that each API error code is about.
var uploadFlags = map[string]string{
	"invalid_hostname":      "--host",
	"host_outside_domains":  "--host",
	"domain_not_verified":   "--host",
	"certificate_names":     "--host",
	"certificate_parse":     "--cert/--key",
	"certificate_key_type":  "--cert",
	"certificate_key_match": "--key",
	"certificate_validity":  "--cert",
	"certificate_chain":     "--cert/--root",
}

func newCertRemoveCmd(g *globals) *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "remove --host H",
		Short: "Remove an uploaded certificate; the hostname goes back to a managed one without a gap",
		Args:  cobra.NoArgs,
		RunE: g.withClient(30*time.Second, func(ctx context.Context, c *client.Client, cmd *cobra.Command, _ []string) error {
			if _, err := hostname.Normalize(host); err != nil {
				return fmt.Errorf("--host: %w", err)
			}
			if err := c.RemoveCertificate(ctx, host); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "uploaded certificate for %s removed; nodes serve it until the managed certificate is ready\n", host)
			return nil
		}),
	}
	cmd.Flags().StringVar(&host, "host", "", "the hostname")
	cmd.MarkFlagRequired("host")
	return cmd
}

// readSmallFile reads at most max bytes of path, refusing a larger file.
func readSmallFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d KiB; give PEM files", path, max>>10)
	}
	return b, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// caSubjects names the certificates of a PEM client CA.
func caSubjects(data string) string {
	var names []string
	for rest := []byte(data); ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			names = append(names, c.Subject.String())
		}
	}
	return strings.Join(names, "; ")
}

// printServices prints services as pages of them arrive: text as a table
// whose columns are aligned within each page (the header once), JSON as one
// array, the same bytes as the whole list encoded at once. A page that
// fails ends the output where it is and returns the error (the exit status
// says the list is incomplete).
func (g *globals) printServices(w io.Writer, pages iter.Seq2[[]client.Service, error]) error {
	if err := g.checkOutput(); err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	n, header := 0, true
	for page, err := range pages {
		if err != nil {
			if g.output == "json" && n > 0 {
				bw.WriteString("\n") // the array is left open: the exit status says the list is incomplete
			}
			return errors.Join(err, bw.Flush())
		}
		if g.output == "json" {
			for _, s := range page {
				b, err := json.MarshalIndent(s, "  ", "  ")
				if err != nil {
					return err
				}
				if n == 0 {
					bw.WriteString("[\n  ")
				} else {
					bw.WriteString(",\n  ")
				}
				bw.Write(b)
				n++
			}
		} else if len(page) > 0 {
			printServiceRows(bw, page, header)
			header = false
			n += len(page)
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	switch {
	case g.output != "json" && header:
		printServiceRows(bw, nil, true)
	case g.output != "json":
	case n == 0:
		bw.WriteString("[]\n")
	default:
		bw.WriteString("\n]\n")
	}
	return bw.Flush()
}

// printServiceRows prints services as a table, aligned among themselves,
// with the header first if header.
func printServiceRows(w io.Writer, ss []client.Service, header bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "NAME\tHOSTNAMES\tUPSTREAMS")
	}
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, strings.Join(s.Hostnames, ","), strings.Join(s.Upstreams, ","))
	}
	return tw.Flush()
}

// listTimeout bounds `spine service list` as a whole.
const listTimeout = 10 * time.Minute
