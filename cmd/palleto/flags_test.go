package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/palleto/palleto/app"
)

// env returns a getenv over the pairs kv.
func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

// TestZeroWaitIsAValue: a wait of 0s typed on the command line or in the environment reaches
// the configuration as "no wait"; an unset flag keeps its default; a flag wins over its
// environment variable. One case per flag of run and serve.
func TestZeroWaitIsAValue(t *testing.T) {
	runField := func(get func(app.Config) time.Duration) func([]string, func(string) string) (time.Duration, error) {
		return func(args []string, getenv func(string) string) (time.Duration, error) {
			o, err := runOptions(args, getenv)
			return get(o.cfg), err
		}
	}
	serveField := func(get func(app.ServeConfig) time.Duration) func([]string, func(string) string) (time.Duration, error) {
		return func(args []string, getenv func(string) string) (time.Duration, error) {
			o, err := serveOptions(append([]string{"--exec", "job"}, args...), getenv)
			return get(o.cfg), err
		}
	}
	for _, c := range []struct {
		cmd, flag string
		def       time.Duration
		parse     func([]string, func(string) string) (time.Duration, error)
	}{
		{"run", "wait-time", 20 * time.Second, runField(func(c app.Config) time.Duration { return c.WaitTime })},
		{"run", "retry-delay", 5 * time.Second, runField(func(c app.Config) time.Duration { return c.RetryDelay })},
		{"run", "max-retry-delay", 5 * time.Minute, runField(func(c app.Config) time.Duration { return c.MaxDelay })},
		{"run", "shutdown-timeout", 30 * time.Second, runField(func(c app.Config) time.Duration { return c.Shutdown })},
		{"serve", "wait-time", 20 * time.Second, serveField(func(c app.ServeConfig) time.Duration { return c.WaitTime })},
		{"serve", "shutdown-timeout", 30 * time.Second, serveField(func(c app.ServeConfig) time.Duration { return c.ShutdownTimeout })},
	} {
		t.Run(c.cmd+" "+c.flag, func(t *testing.T) {
			envVar := envName(c.flag)
			for _, k := range []struct {
				name string
				args []string
				env  []string
				want time.Duration
			}{
				{"unset", nil, nil, c.def},
				{"flag 0s", []string{"--" + c.flag, "0s"}, nil, app.NoWait},
				{"flag 0", []string{"--" + c.flag + "=0"}, nil, app.NoWait},
				{"env 0s", nil, []string{envVar, "0s"}, app.NoWait},
				{"flag over env", []string{"--" + c.flag, "3s"}, []string{envVar, "0s"}, 3 * time.Second},
				{"flag 0s over env", []string{"--" + c.flag, "0s"}, []string{envVar, "3s"}, app.NoWait},
			} {
				got, err := c.parse(k.args, env(k.env...))
				if err != nil || got != k.want {
					t.Errorf("%s: %s = %v, %v; want %v", k.name, c.flag, got, err, k.want)
				}
			}
			_, err := c.parse([]string{"--" + c.flag, "-1s"}, env())
			if ue := (*usageError)(nil); !errors.As(err, &ue) || !strings.Contains(err.Error(), c.flag) || !strings.Contains(err.Error(), "negative") {
				t.Errorf("--%s -1s: %v, want a usage error naming the flag: must not be negative", c.flag, err)
			}
		})
	}
}

// TestZeroThatCannotWork: a zero the configuration cannot honour is refused by name, never
// replaced by a default.
func TestZeroThatCannotWork(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--visibility-timeout", "0s"}, "--visibility-timeout"},
		{[]string{"--fetchers", "0"}, "--fetchers"},
		{[]string{"--processors", "0"}, "--processors"},
		{[]string{"--max-work-time", "0s"}, "--max-work-time"},
		{[]string{"--max-work-time", "13h"}, "--max-work-time"},
	} {
		_, err := runOptions(c.args, env())
		if ue := (*usageError)(nil); !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), c.flag+" ") {
			t.Errorf("run %v: %v, want a usage error starting with %s", c.args, err, c.flag)
		}
	}
}

// TestMaxWorkTime: --max-work-time (or PALLETO_MAX_WORK_TIME) reaches the configuration as
// typed, the flag over the variable; unset, it is one hour.
func TestMaxWorkTime(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want time.Duration
	}{
		{"unset", nil, nil, time.Hour},
		{"flag", []string{"--max-work-time", "90m"}, nil, 90 * time.Minute},
		{"env", nil, []string{"PALLETO_MAX_WORK_TIME", "2h"}, 2 * time.Hour},
		{"flag over env", []string{"--max-work-time", "5m"}, []string{"PALLETO_MAX_WORK_TIME", "2h"}, 5 * time.Minute},
		{"12h", []string{"--max-work-time", "12h"}, nil, 12 * time.Hour},
	} {
		o, err := runOptions(c.args, env(c.env...))
		if err != nil || o.cfg.MaxWorkTime != c.want {
			t.Errorf("%s: MaxWorkTime = %v, %v; want %v", c.name, o.cfg.MaxWorkTime, err, c.want)
		}
	}
}
