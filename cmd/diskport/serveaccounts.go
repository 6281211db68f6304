package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/diskport/diskport/server"
	"github.com/diskport/diskport/server/store"
)

// serveAccountsUsage is the synopsis of `serve accounts`, one line per
// subcommand.
const serveAccountsUsage = `serve accounts add --data DIR [--store postgres://…|sqlite:FILE] NAME
       diskport serve accounts list --data DIR [--store postgres://…|sqlite:FILE]
       diskport serve accounts remove --data DIR [--store postgres://…|sqlite:FILE] NAME
       diskport serve accounts rotate --data DIR [--store postgres://…|sqlite:FILE] NAME`

// An accountsCommand is a subcommand of `serve accounts`.
type accountsCommand struct {
	summary string
	nargs   int // NAME or nothing
	run     func(ctx context.Context, st *store.DB, pos []string) error
}

var accountsCommands = map[string]accountsCommand{
	"add":    {"add an account to a server's store and print its key pair", 1, accountsAdd},
	"list":   {"list a server's accounts with their access key ids (never a secret)", 0, accountsList},
	"remove": {"remove an account: its key pairs stop working at once; its tasks and volumes stay", 1, accountsRemove},
	"rotate": {"give an account a new key pair and print it; the old one stops working at once", 1, accountsRotate},
}

// runServeAccounts runs `diskport serve accounts add|list|remove|rotate`
// on a server's store, beside the running server if need be: SQLite's
// locking, or PostgreSQL's, lets them share it.
func runServeAccounts(args []string) error {
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	sc, ok := accountsCommands[sub]
	if !ok {
		return usageError("want: diskport serve accounts add|list|remove|rotate --data DIR [NAME]")
	}
	usage := ""
	for _, l := range strings.Split(serveAccountsUsage, "\n") {
		if l = strings.TrimPrefix(strings.TrimSpace(l), "diskport "); strings.HasPrefix(l, "serve accounts "+sub+" ") {
			usage = l
		}
	}
	c := &command{name: "serve accounts " + sub, summary: sc.summary, usage: usage}
	fs := c.flags()
	data := fs.String("data", "", "the server's data directory")
	storeURL := fs.String("store", "", "the server's --store")
	pos, err := c.parse(fs, args[1:], sc.nargs, sc.nargs)
	if err != nil {
		return err
	}
	if *data == "" && *storeURL == "" {
		return usageError("--data or --store is required")
	}
	ctx := context.Background()
	if *storeURL == "" {
		if sub == "add" {
			if err := os.MkdirAll(*data, 0o700); err != nil {
				return err
			}
		} else if _, err := os.Stat(filepath.Join(*data, store.FileName)); err != nil {
			// Only add makes a store: the others read one.
			return fmt.Errorf("%s holds no server database (%s): give the server's --data (or --store)", *data, store.FileName)
		}
	}
	st, err := openStore(ctx, *data, *storeURL)
	if err != nil {
		return err
	}
	defer st.Close()
	return sc.run(ctx, st, pos)
}

func accountsAdd(ctx context.Context, st *store.DB, pos []string) error {
	a, k, err := server.AddAccount(ctx, st, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "added account %s (%s); its key pair:\n%s %s\n", a.Name, a.ID, k.ID, k.Secret)
	return nil
}

func accountsList(ctx context.Context, st *store.DB, _ []string) error {
	as, err := st.Accounts(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tACCOUNT\tACCESS KEY IDS")
	for _, a := range as {
		ks, err := st.AccessKeys(ctx, a.ID)
		if err != nil {
			return err
		}
		ids := make([]string, len(ks))
		for i, k := range ks {
			ids[i] = k.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.ID, strings.Join(ids, ","))
	}
	return tw.Flush()
}

func accountsRemove(ctx context.Context, st *store.DB, pos []string) error {
	a, err := st.RemoveAccount(ctx, pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no account named %q (see diskport serve accounts list)", pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "removed account %s (%s): its key pairs no longer work\n", a.Name, a.ID)
	return nil
}

func accountsRotate(ctx context.Context, st *store.DB, pos []string) error {
	a, k, err := server.RotateKey(ctx, st, pos[0])
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no account named %q (see diskport serve accounts list)", pos[0])
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rotated the key pair of account %s (%s): the old one no longer works; the new one (shown only now):\n%s %s\n", a.Name, a.ID, k.ID, k.Secret)
	return nil
}
