package mifaresim

// The PC/SC storage-card pseudo-APDUs the card answers in the role of its
// reader (PC/SC part 3, and ACS's value operations). They are written here
// again rather than taken from the terminal, so that a wrong byte on one
// side is caught by the other.
const (
	claReader    = 0xFF
	insLoadKeys  = 0x82
	insAuth      = 0x86
	insRead      = 0xB0
	insWrite     = 0xD6
	insGetData   = 0xCA
	insValueOp   = 0xD7 // ACS: store, increment, decrement, restore
	insReadValue = 0xB1 // ACS: read value
)

// swFailed is the readers' "operation failed" (6300): a failed
// authentication, or an access the card refused.
const swFailed uint16 = 0x6300

// authVersion is the version byte of GENERAL AUTHENTICATE's data.
const authVersion = 0x01
