package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/palleto/palleto/internal/browser"
)

// adminPlaceholder in the arguments of exec's command is replaced with a free loopback
// address, the admin listener's; -page opens its dashboard.
const adminPlaceholder = "{admin}"

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// withAdmin replaces adminPlaceholder in argv with addr, and tells whether it was there.
func withAdmin(argv []string, addr string) ([]string, bool) {
	out := make([]string, len(argv))
	found := false
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, adminPlaceholder, addr)
		found = found || out[i] != a
	}
	return out, found
}

// page is a dashboard held open in a headless Chromium during a run. The browser starts
// before the command, with a blank page of 127.0.0.1 loaded (so that the renderer of that
// site runs already, as in a browser where the dashboard was open before), so that its
// start-up is not in the run; the dashboard is loaded as soon as the admin listener takes
// connections, and polls the API every second as a user's would.
type page struct {
	tab    context.Context
	stop   func()
	dir    string
	cancel context.CancelFunc
	loaded chan error // the outcome of the load, once known
	pid    int        // the browser's
	cpu0   time.Duration
}

func startPage(ctx context.Context) (*page, error) {
	path, err := browser.Find()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pipebench-chromium-")
	if err != nil {
		return nil, err
	}
	tab, stop, err := browser.Start(ctx, path, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &page{tab: tab, stop: stop, dir: dir}
	blank := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "<!doctype html><title>blank</title>")
	}))
	err = chromedp.Do(tab, chromedp.Navigate(blank.URL))
	blank.Close()
	if err != nil {
		p.close()
		return nil, fmt.Errorf("a blank page of 127.0.0.1: %w", err)
	}
	if proc := chromedp.FromContext(tab).Browser.Process(); proc != nil {
		p.pid = proc.Pid
		p.cpu0 = treeCPU(p.pid)
	}
	return p, nil
}

// treeCPU is the CPU time (user and system) that the process pid and its descendants have
// used, from /proc; 0 where there is none.
func treeCPU(pid int) time.Duration {
	const tick = 10 * time.Millisecond // USER_HZ on Linux
	type proc struct {
		ppid  int
		ticks int64
	}
	procs := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		id, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid … utime stime: fields 4, 14 and 15; comm may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		procs[id] = proc{ppid, ut + st}
	}
	var sum int64
	for id, p := range procs {
		for a := id; a > 1; a = procs[a].ppid {
			if a == pid {
				sum += p.ticks
				break
			}
			if _, ok := procs[a]; !ok {
				break
			}
		}
	}
	return time.Duration(sum) * tick
}

// open loads the dashboard at addr once something listens there, until close.
func (p *page) open(addr string) {
	ctx, cancel := context.WithCancel(p.tab)
	p.cancel, p.loaded = cancel, make(chan error, 1)
	go func() {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-ctx.Done():
				p.loaded <- errors.New("the admin listener never took a connection")
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/"),
			chromedp.WaitVisible(chromedp.CSS(`#topo-svg`)),
		)
		if err == nil {
			_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`performance.setResourceTimingBufferSize(100000), true`))
		}
		p.loaded <- err
	}()
}

// close waits a little for a load under way, and returns how many snapshots the page
// polled and the CPU time the browser used since it was started, or why it never showed
// the dashboard.
func (p *page) close() (polls int, cpu time.Duration, err error) {
	if p.pid != 0 {
		cpu = treeCPU(p.pid) - p.cpu0
	}
	defer func() {
		p.stop()
		os.RemoveAll(p.dir)
	}()
	if p.loaded == nil {
		return 0, cpu, errors.New("no page was opened")
	}
	t := time.AfterFunc(5*time.Second, p.cancel)
	defer t.Stop()
	if err := <-p.loaded; err != nil {
		return 0, cpu, fmt.Errorf("the dashboard did not load: %w", err)
	}
	p.cancel()
	ctx, cancel := context.WithTimeout(p.tab, 5*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/snapshot")).length`))
	if err != nil {
		return 0, cpu, fmt.Errorf("counting the page's polls: %w", err)
	}
	return n, cpu, nil
}
