package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/replicator-cdc/replicator/app"
	"github.com/replicator-cdc/replicator/config"
)

// tableList collects repeated --table flags.
type tableList []string

func (l *tableList) String() string { return strings.Join(*l, ",") }

func (l *tableList) Set(v string) error {
	*l = append(*l, strings.Split(v, ",")...)
	return nil
}

func resyncCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("resync", "Usage: replicator resync --config FILE (--table SCHEMA.TABLE ... | --all)\n\nMarks tables to be copied again at the next start, from a snapshot taken then. Empty the target\ntables first. With --table, changes the copy already holds are skipped when the stream meets them\n(so a TRUNCATE that stopped the daemon is answered). With --all the state lets go of the slot's\nposition and every table's progress: the next start follows the slot from where it is (the way out\nwhen the slot was moved, dropped or created again). Stop the daemon first.", stderr)
	var tables tableList
	fs.Var(&tables, "table", "a mapped source `table` to copy again (repeatable)")
	all := fs.Bool("all", false, "copy every mapped table again")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	done, err := app.Resync(ctx, cfg, *all, tables)
	for _, d := range done {
		fmt.Fprintln(stdout, d)
	}
	return err
}

func acceptSlotCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("accept-slot", "Usage: replicator accept-slot --config FILE --yes\n\nMakes the state follow the replication slot from where it is now, keeping the tables' progress.\nThe changes between the saved checkpoint and the slot's position are never mirrored: use it only\nwhen that gap is acceptable (otherwise 'replicator resync --all'). Stop the daemon first.", stderr)
	yes := fs.Bool("yes", false, "really give up the changes between the checkpoint and the slot's position")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*yes {
		return errors.New("accept-slot gives up the changes between the checkpoint and the slot's position: pass --yes to confirm")
	}
	cfg, err := config.Load(*configPath, os.LookupEnv)
	if err != nil {
		return err
	}
	done, err := app.AcceptSlot(ctx, cfg)
	for _, d := range done {
		fmt.Fprintln(stdout, d)
	}
	return err
}
