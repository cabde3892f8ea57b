package object_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"log"

	"github.com/palleto/palleto/object"
)

func ExampleDecode() {
	var stored bytes.Buffer
	zw := gzip.NewWriter(&stored)
	zw.Write([]byte("first line\nsecond line\nno newline at the end"))
	zw.Close()

	dec, enc, err := object.Decode(&stored)
	if err != nil {
		log.Fatal(err)
	}
	defer dec.Close()
	n, lines, err := object.Count(dec)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(enc, n, lines)
	// Output: gzip 44 2
}
