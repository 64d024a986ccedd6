package daemon

// ConfigError is why a daemon cannot start as configured: a file a key
// names that cannot be read or does not fit (host.secret_file,
// api.token_file, mifare.key_file, printer.font_file, door.relay), an
// api.allowed_hosts that does not fit the listener, or a store.path
// another daemon holds. Trying again changes nothing, so cardd exits 2 on
// it, which systemd does not restart.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }
