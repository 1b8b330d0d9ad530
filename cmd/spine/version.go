package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/client"
	"github.com/spine-platform/spine/internal/api"
)

// versionOutput is what `spine version -o json` prints.
type versionOutput struct {
	Client client.VersionInfo  `json:"client"`
	Server *client.VersionInfo `json:"server,omitempty"`
	// ServerError says why the server's version is missing.
	ServerError string `json:"server_error,omitempty"`
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build settings of this binary (and of the server, if it answers)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			out := versionOutput{Client: api.VersionInfo(spineVersion(), "")}
			c := client.New(strings.TrimSuffix(g.api, "/"), "")
			ctx, cancel := cmdContext(cmd, 2*time.Second)
			defer cancel()
			if v, err := c.Version(ctx); err == nil {
				out.Server = &v
			} else {
				out.ServerError = err.Error()
			}
			return g.print(cmd.OutOrStdout(), out, func(tw *tabwriter.Writer) {
				versionText(tw, "spine "+out.Client.Version, out.Client)
				if out.Server != nil {
					fmt.Fprintln(tw)
					versionText(tw, fmt.Sprintf("server %s (store: %s) at %s", out.Server.Version, out.Server.Store, g.api), *out.Server)
				}
			})
		},
	}
}

func versionText(w io.Writer, header string, v client.VersionInfo) {
	fmt.Fprintln(w, header)
	commit := "not recorded (built without VCS information)"
	if v.Commit != "" {
		commit = v.Commit
		if v.CommitTime != nil {
			commit += " (" + v.CommitTime.Format(time.RFC3339) + ")"
		}
		if v.Modified {
			commit += ", with uncommitted changes"
		}
	}
	fmt.Fprintf(w, "  commit:\t%s\n", commit)
	build := fmt.Sprintf("%s %s/%s", v.GoVersion, v.OS, v.Arch)
	if v.Race {
		build += ", race detector"
	}
	fmt.Fprintf(w, "  go:\t%s\n", build)
	if len(v.Settings) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(v.Settings)) {
			kv = append(kv, k+"="+v.Settings[k])
		}
		fmt.Fprintf(w, "  settings:\t%s\n", strings.Join(kv, " "))
	}
}
