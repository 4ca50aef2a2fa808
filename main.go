// Command imsrv is a self-hosted instant-messaging server speaking the llfc
// protocol. See README.md; `imsrv all` runs everything in one process.
package main

import (
	"context"
	"os"

	"github.com/imsrv/imsrv/app"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(app.Main(context.Background(), version, os.Args[1:], os.Stdout, os.Stderr))
}
