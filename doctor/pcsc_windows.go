package doctor

import "fmt"

// pcscSocket names what WinSCard talks to, for messages: there is no
// socket on Windows.
func pcscSocket() string { return "the smart card service (WinSCard)" }

// pcscFailure is the check's detail and fix when WinSCard gave no context
// or no reader list: SCARD_E_NO_SERVICE on a Windows with no reader ever
// plugged in, an internal error under Wine, which has no service.
func pcscFailure(_ string, err error) (detail, fix string) {
	return fmt.Sprintf("no smart card service: WinSCard gave no PC/SC context: %v", err),
		"plug in the card reader and install its driver: Windows starts the Smart Card service (SCardSvr) while a reader is present; check it with sc query SCardSvr, start it with sc start SCardSvr"
}
