package webhook_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/palleto/palleto/webhook"
)

// Mount the handler on a mux; here the calls Dropbox would make are played
// against it directly.
func Example() {
	secret := []byte("app-secret")
	h, err := webhook.New(webhook.Config{
		Secret: secret,
		Enqueue: func(ctx context.Context, ids []string) error {
			// A real server hands the ids to its job queue here.
			fmt.Println("enqueue", ids)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", h)
	// On shutdown, h.Stop() makes Dropbox keep its calls for later.

	// Dropbox checks the endpoint once.
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/webhook?challenge=xyz", nil))
	fmt.Println(w.Code, w.Body.String())

	// Then notifies it of changes.
	body := `{"list_folder":{"accounts":["dbid:AAA","dbid:BBB","dbid:AAA"]},"delta":{"users":[1,2]}}`
	r := httptest.NewRequest("POST", "/webhook", strings.NewReader(body))
	r.Header.Set("X-Dropbox-Signature", webhook.Sign(secret, []byte(body)))
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	fmt.Println(w.Code)

	// Output:
	// 200 xyz
	// enqueue [dbid:AAA dbid:BBB]
	// 200
}
