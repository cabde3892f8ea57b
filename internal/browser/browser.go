// Package browser finds and starts a headless Chromium, driven with chromedp, for the
// dashboard's tests in a real browser and for the benchmark of a dashboard held open.
package browser

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/chromedp/chromedp"
)

// Env names a Chromium or Chrome to use instead of the one found on the PATH.
const Env = "PALLETO_CHROMIUM"

// names are the commands tried on the PATH, in order.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// ErrNotFound says that no Chromium was found, and how to get one.
var ErrNotFound = errors.New("no Chromium found (apt-get install chromium, or set " + Env + ")")

// Find returns the Chromium of $PALLETO_CHROMIUM, or else the first of chromium,
// chromium-browser, google-chrome and google-chrome-stable on the PATH, or ErrNotFound.
func Find() (string, error) {
	if p := os.Getenv(Env); p != "" {
		return p, nil
	}
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// Start starts the headless Chromium at path, with a fresh profile in dataDir (which the
// caller removes), and waits until it shows a blank page. The returned context drives its
// tab; stop ends the browser and waits for it to exit.
func Start(ctx context.Context, path, dataDir string) (tab context.Context, stop func(), err error) {
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dataDir),
		chromedp.WindowSize(1400, 1100),
	)
	tab, cancelTab := chromedp.NewContext(alloc)
	stop = func() {
		cancelTab()
		cancelAlloc() // waits for the browser to exit
	}
	if err := chromedp.Do(tab, chromedp.Navigate("about:blank")); err != nil {
		stop()
		return nil, nil, fmt.Errorf("starting %s: %w", path, err)
	}
	return tab, stop, nil
}
