package daemon

import (
	"encoding/json"
	"net"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/internal/atomicfile"
)

// RuntimeAPI is where a running daemon's local API is, for the operator
// commands of the same machine.
type RuntimeAPI struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// RuntimeAPIPath is the runtime file beside the store: one per terminal, as
// the store is.
func RuntimeAPIPath(cfg *config.Config) string { return cfg.Store.Path + ".api" }

func writeRuntimeAPI(path string, rt RuntimeAPI) error {
	b, err := json.Marshal(rt)
	if err != nil {
		return err
	}
	// Whole or not at all: cardd pos may read it at any moment.
	return atomicfile.Write(path, b, 0o600)
}

// DialAddr is where a client on this machine reaches a listener on
// hostport: hostport itself, or 127.0.0.1 for a wildcard address (which is
// neither one to connect to nor a Host the API answers to).
func DialAddr(hostport string) string {
	h, port, err := net.SplitHostPort(hostport)
	if ip := net.ParseIP(h); err == nil && (h == "" || ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return hostport
}
