package reader

// serviceName is the PC/SC service as messages name it: WinSCard talks to
// the Smart Card service (SCardSvr), which Windows starts with a reader.
const serviceName = "smart card service (SCardSvr)"

// serviceDown is the monitor's log message while there is no service.
const serviceDown = "no smart card service; retrying"
