package main

import (
	"errors"
	"flag"
	"time"

	"github.com/palleto/palleto/app"
)

// waitFlag is a duration flag for a wait that the user may turn off with 0s. In app's
// configurations a zero duration means the default, so a 0 typed on the command line (or in
// the environment) is stored as app.NoWait; an unset flag keeps its default. Negative values
// are refused.
type waitFlag struct{ d *time.Duration }

// waitVar defines a waitFlag with a default.
func waitVar(fs *flag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(waitFlag{p}, name, usage)
}

func (f waitFlag) String() string {
	if f.d == nil || *f.d == app.NoWait {
		return "0s"
	}
	return f.d.String()
}

func (f waitFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return errors.New("not a duration (like 0s, 500ms, 20s, 5m)")
	case d < 0:
		return errors.New("must not be negative")
	case d == 0:
		d = app.NoWait
	}
	*f.d = d
	return nil
}
