package psamsim

// The command bytes the PSAM answers and the lengths it checks (spec
// "PSAM"). They are written here again rather than taken from the
// terminal, so that a wrong byte on one side is caught by the other.
const (
	claISO  = 0x00
	claPBOC = 0x80

	insSelect         = 0xA4
	insReadBinary     = 0xB0
	insGetResponse    = 0xC0
	insInitSAMPurch   = 0x70 // INIT SAM FOR PURCHASE (MAC1 计算)
	insCreditSAMPurch = 0x72 // CREDIT SAM FOR PURCHASE (MAC2 校验)
	insSecurityCode   = 0xCA // the card's security code (安全认证码)

	// initFixedLen is what precedes the factors in INIT SAM FOR PURCHASE:
	// random(4) offlineCtr(2) amount(4) type(1) date(4) time(3)
	// keyVersion(1) algId(1).
	initFixedLen = 20
)

// pseName is the DF name of the MF, by which a terminal may select it.
var pseName = []byte("1PAY.SYS.DDF01")
