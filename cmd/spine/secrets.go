package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/spine-platform/spine/internal/node"

	"github.com/spine-platform/spine/internal/node/config"
	"github.com/spine-platform/spine/internal/secrets"
)

// newSecretsCmd is `spine secrets`: the secret key file that seals the
// store's private keys.
func newSecretsCmd(g *globals) *cobra.Command {
	sec := &cobra.Command{
		Use:   "secrets",
		Short: "Make and rotate the secret key file that seals the private keys in the store",
	}
	var out string
	newKey := &cobra.Command{
		Use:   "new-key --out FILE",
		Short: "Write a new secret key file (0600); never replaces a file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out: give the file to write")
			}
			content, err := secrets.Generate()
			if err != nil {
				return err
			}
			if err := secrets.CreateFile(out, content); err != nil {
				return fmt.Errorf("--out %s: %w (an existing key file is never replaced)", out, err)
			}
			_, raw, err := secrets.Parse(content)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote key %s to %s; keep a copy apart from the database\n", secrets.KeyID(raw[0]), out)
			return nil
		},
	}
	newKey.Flags().StringVar(&out, "out", "", "file to write")

	var storeFlag, keyFile, newKeyFile string
	var wait time.Duration
	rotate := &cobra.Command{
		Use:   "rotate --new-key-file FILE [--secret-key-file FILE] [--store DSN]",
		Short: "Reseal every secret of the store under a new key while the nodes keep serving",
		Long: `Reseal every private key and other secret of the store under the key in --new-key-file
(made if the file does not exist), while the nodes keep serving. The secret key file the nodes
read (--secret-key-file, default secret.key in the data folder) is rewritten twice: first with
the new key last, so that every node can open what it seals, then first, so that every node
seals with it; after each, the command waits until every connected node has read it again
(nodes read it every 10 s). Nodes that read another copy of the file need it copied at each
step: the command says which nodes it waits for. Then every secret sealed with an older key is
resealed. The old keys stay in the file; delete them once the command is done.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if newKeyFile == "" {
				return fmt.Errorf("--new-key-file: give the file of the new key (made if it does not exist)")
			}
			if wait <= 0 {
				return fmt.Errorf("--wait %v: give a positive duration", wait)
			}
			err := node.RotateSecrets(ctx, node.RotateConfig{
				Config:     config.Config{DataDir: g.data, Store: storeDSN(storeFlag), SecretKeyFile: keyFile},
				NewKeyFile: newKeyFile,
				Wait:       wait,
				Progress:   func(s string) { fmt.Fprintln(cmd.OutOrStdout(), s) },
			})
			return configError(err)
		},
	}
	rotate.Flags().StringVar(&storeFlag, "store", "", "the nodes' store: sqlite:PATH or postgres://... (default sqlite in the data folder; env SPINE_STORE)")
	rotate.Flags().StringVar(&keyFile, "secret-key-file", "", "the secret key file the nodes read (default secret.key in the data folder)")
	rotate.Flags().StringVar(&newKeyFile, "new-key-file", "", "file of the new key; made (0600) if it does not exist")
	rotate.Flags().DurationVar(&wait, "wait", 5*time.Minute, "longest wait for the connected nodes to read the key file again, at each step")
	sec.AddCommand(newKey, rotate)
	return sec
}
