package browser

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFind(t *testing.T) {
	t.Setenv(Env, "/opt/my/chrome")
	if p, err := Find(); p != "/opt/my/chrome" || err != nil {
		t.Fatalf("with %s set: %q, %v", Env, p, err)
	}
	t.Setenv(Env, "")
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if p, err := Find(); p != "" || !errors.Is(err, ErrNotFound) {
		t.Fatalf("with none on the PATH: %q, %v", p, err)
	}
	exe := filepath.Join(dir, "google-chrome")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := Find(); p != exe || err != nil {
		t.Fatalf("with google-chrome on the PATH: %q, %v", p, err)
	}
}

// A browser started by Start loads a page and ends with stop. Skipped without Chromium,
// unless PALLETO_BROWSER=required.
func TestStart(t *testing.T) {
	path, err := Find()
	if err != nil {
		if os.Getenv("PALLETO_BROWSER") == "required" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	tab, stop, err := Start(t.Context(), path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := chromedp.Do(tab, chromedp.Navigate("data:text/html,<title>palleto</title>")); err != nil {
		t.Fatal(err)
	}
	if title, err := chromedp.Run(tab, chromedp.Title()); err != nil || title != "palleto" {
		t.Fatalf("title %q, %v", title, err)
	}
}

func TestStartFails(t *testing.T) {
	if _, _, err := Start(t.Context(), filepath.Join(t.TempDir(), "no-chromium"), t.TempDir()); err == nil {
		t.Fatal("Start of a missing binary: no error")
	}
}
