package app_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/awstest"
	pbrowser "github.com/palleto/palleto/internal/browser"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/jobs"
)

// shotsEnv names a directory where the dashboard tests save screenshots of the pages they
// load (docs/ keeps the ones the README shows). Unset: none are saved.
const shotsEnv = "PALLETO_DASHBOARD_SHOTS"

// browser starts a headless Chromium with a fresh profile; it ends with the test. Without
// one it skips the test saying why, or fails it with PALLETO_BROWSER=required (as CI sets).
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := pbrowser.Find()
	if err != nil {
		why := err.Error() + ": the dashboard is not tested in a browser"
		if os.Getenv("PALLETO_BROWSER") == "required" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	tab, stop, err := pbrowser.Start(context.Background(), path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(tab, 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// attrInt reads an integer attribute of the first element that sel matches.
func attrInt(t *testing.T, ctx context.Context, sel, attr string) int {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), attr))
	if err != nil {
		t.Fatalf("%s[%s]: %v", sel, attr, err)
	}
	n, _ := strconv.Atoi(v.Value)
	return n
}

// eventually polls cond in the page until it holds or a minute has passed.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed %s", what)
		}
		if err := chromedp.Do(ctx, chromedp.Sleep(200*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
}

func jsBool(t *testing.T, ctx context.Context, expr string) bool {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return b
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(shotsEnv)
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The dashboard of a running pipeline, in a real browser: the real stages, their counts
// moving as objects flow, the queue beside them, and a failure with its next step.
func TestDashboardRun(t *testing.T) {
	ctx := browser(t)
	e := newEnv(t, awstest.Local(t), 3)
	e.purge(t)
	e.send(t, s3Notification(e.bucket, "missing/object.log"))
	for i := range 20 {
		e.put(t, fmt.Sprintf("logs/%02d.log.gz", i), gz(lines(2000+i, "line")))
	}
	addr := make(chan string, 1)
	cfg := e.config(func(c *app.Config) {
		c.Drain = false
		c.Fetchers = 2
		c.AdminListen = "127.0.0.1:0"
		c.AdminReady = func(a string) { addr <- a }
		c.Logger = slog.New(slog.DiscardHandler)
	})
	r := startRun(t, cfg)
	defer func() {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}()
	url := "http://" + <-addr + "/"

	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`g.node[data-stage="write"]`))); err != nil {
		t.Fatal(err)
	}
	for _, stage := range []string{"queue", "sqs", "parse", "fetch", "analyse", "write"} {
		if !jsBool(t, ctx, fmt.Sprintf(`!!document.querySelector('g.node[data-stage=%q]')`, stage)) {
			t.Errorf("no %s node in the topology", stage)
		}
	}
	eventually(t, ctx, "the 20 objects written", func() bool {
		return attrInt(t, ctx, `g.node[data-stage="write"]`, "data-done") >= 20
	})
	first := attrInt(t, ctx, `g.node[data-stage="write"]`, "data-done")
	for i := range 10 {
		e.put(t, fmt.Sprintf("more/%02d.log", i), lines(500, "more"))
	}
	eventually(t, ctx, "the count of written objects move", func() bool {
		return attrInt(t, ctx, `g.node[data-stage="write"]`, "data-done") >= first+10
	})
	eventually(t, ctx, "the missing object's failure", func() bool {
		return jsBool(t, ctx, `[...document.querySelectorAll('#failures-table tbody tr')].some(r => r.textContent.includes('missing/object.log') && r.textContent.includes('retried within 200ms (receive 1 of 3, then dead-lettered)'))`)
	})
	// Once no failure comes, the table stays as it is, so that a reader can select in it:
	// the same rows after two more polls.
	eventually(t, ctx, "the missing object's last failure", func() bool {
		return jsBool(t, ctx, `[...document.querySelectorAll('#failures-table tbody tr')].some(r => r.textContent.includes('dead-lettered by the queue\'s redrive policy (receive 3 of 3)'))`)
	})
	seq, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelector('#failures-table tbody tr').dataset.mark = 'kept'; state.seq`))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "two more polls", func() bool {
		return jsBool(t, ctx, fmt.Sprintf(`state.seq >= %d`, seq+2))
	})
	if !jsBool(t, ctx, `document.querySelector('#failures-table tbody tr').dataset.mark === 'kept'`) {
		t.Error("the failures table was drawn again with nothing new in it")
	}
	if !jsBool(t, ctx, `document.querySelectorAll('#charts .chart').length >= 4`) {
		t.Error("fewer than four charts")
	}
	if !jsBool(t, ctx, `!document.getElementById('queue-card').hidden && document.getElementById('jobs-card').hidden`) {
		t.Error("a run's page shows the queue, not jobs")
	}
	screenshot(t, ctx, "dashboard-run.png")
}

// The dashboard of a running pool, in a real browser: jobs by state, and a dead job run
// again with its button.
func TestDashboardServe(t *testing.T) {
	ctx := browser(t)
	var healed atomic.Bool
	s := startServe(t, app.ServeConfig{Memory: true, Workers: 2, MaxAttempts: 2, Handler: func(ctx context.Context, j jobs.Job) error {
		select {
		case <-time.After(150 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
		if strings.HasPrefix(j.ID, "dbid:bad") && !healed.Load() {
			return errors.New("exit status 2: sync failed: quota exceeded")
		}
		return nil
	}})
	var ids []string
	for i := range 12 {
		ids = append(ids, fmt.Sprintf("dbid:acct-%02d", i))
	}
	mustPost(t, s.url, append(ids, "dbid:bad-1")...)

	if err := chromedp.Do(ctx, chromedp.Navigate(s.admin+"/"), chromedp.WaitVisible(chromedp.CSS(`g.node[data-stage="workers"]`))); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the workers' count move", func() bool {
		return attrInt(t, ctx, `g.node[data-stage="workers"]`, "data-done") > 0
	})
	row := `#jobs-table tr[data-id="dbid:bad-1"]`
	eventually(t, ctx, "the dead job with its error", func() bool {
		return jsBool(t, ctx, `(() => { const b = document.querySelector('#job-tabs button[data-state="dead"]'); if (b && !b.classList.contains('active')) b.click();
			const r = document.querySelector('`+row+`'); return !!r && r.dataset.state === 'dead' && r.textContent.includes('quota exceeded'); })()`)
	})
	screenshot(t, ctx, "dashboard-serve.png")
	healed.Store(true)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+` button.run-now`))); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the requeued job done", func() bool {
		c := counts(t, s.admin)
		return c.Done == len(ids)+1 && jsBool(t, ctx, `!document.querySelector('`+row+`')`)
	})
	if c := counts(t, s.admin); c.Dead != 0 {
		t.Errorf("after the button, counts %+v", c)
	}
}

// The dashboard of a pool on SQS, in a real browser: SQS counts the jobs but cannot list
// them, and the page says so where the list would be, rather than show an empty one.
func TestDashboardServeSQS(t *testing.T) {
	ctx := browser(t)
	bk := awstest.Local(t)
	q, err := moto.CreateQueue(t.Context(), bk.SQS(), "dashboard-jobs", moto.QueueOptions{MaxReceiveCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := bk.Config("")
	s := startServe(t, app.ServeConfig{QueueURL: q.URL, AWS: &awsCfg, WaitTime: time.Second, Workers: 2,
		Handler: func(context.Context, jobs.Job) error { return nil }})
	mustPost(t, s.url, "dbid:acct-1", "dbid:acct-2")

	if err := chromedp.Do(ctx, chromedp.Navigate(s.admin+"/"), chromedp.WaitVisible(chromedp.CSS(`g.node[data-stage="workers"]`))); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, "the two jobs done", func() bool {
		return attrInt(t, ctx, `g.node[data-stage="workers"]`, "data-done") >= 2
	})
	eventually(t, ctx, "why the jobs are not listed", func() bool {
		return jsBool(t, ctx, `(() => { const p = document.getElementById('jobs-unlisted');
			return !document.getElementById('jobs-card').hidden && !p.hidden && p.textContent.includes('cannot be listed') && p.textContent.includes(`+strconv.Quote(q.DeadLetter.URL)+`); })()`)
	})
	if !jsBool(t, ctx, `document.getElementById('jobs-table').hidden && document.getElementById('job-tabs').hidden && document.getElementById('jobs-empty').hidden`) {
		t.Error("the page shows a table of jobs that SQS cannot list")
	}
	if !jsBool(t, ctx, `!document.getElementById('queue-card').hidden && !document.getElementById('jobs-counts-card').hidden`) {
		t.Error("the page does not show the queue and the job counts")
	}
	screenshot(t, ctx, "dashboard-serve-sqs.png")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}
