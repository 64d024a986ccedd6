package trace

// The cardholder file EF 0x16 (spec "Files", epurse.ParseHolder): the name is
// bytes 2-21, the id number bytes 22-53. Card type, staff flag and id type
// around them are no one's identity and stay, so a replay reads the same
// kind of card.
const (
	holderSFI                = 0x16
	personalFrom, personalTo = 2, 54 // [from, to) of EF 0x16
)

// Instructions whose answers carry file contents.
const (
	insSelect      = 0xA4
	insReadBinary  = 0xB0
	insReadRecord  = 0xB2
	insGetResponse = 0xC0
)

// BlankPersonal sets to 00 the bytes of the cardholder's name and id number
// wherever the trace's answers carry them, and returns how many bytes it
// changed. It follows EF 0x16 however it was read: READ BINARY with the SFI
// in P1 (00 B0 96 off Le), or by offset after a SELECT of file 0016, at any
// offset, and the rest of an answer fetched by GET RESPONSE (61xx).
func (t *Trace) BlankPersonal() int {
	blanked := 0
	curEF := -1   // the EF a SELECT by file id made current; -1 none
	chained := -1 // EF 0x16 offset where a 61xx answer's rest continues; -1 none
	for i := range t.Exchanges {
		e := &t.Exchanges[i]
		cmd, resp := e.Command, e.Response
		data, sw1 := resp[:len(resp)-2], resp[len(resp)-2]
		off := -1 // EF 0x16 offset of data's first byte; -1: not EF 0x16
		switch ins := cmd[1]; {
		case ins == insGetResponse:
			off = chained
		case ins == insReadBinary && cmd[2]&0x80 != 0:
			if cmd[2]&0x1F == holderSFI {
				off = int(cmd[3])
			}
		case ins == insReadBinary:
			if curEF == holderSFI {
				off = int(cmd[2])<<8 | int(cmd[3])
			}
		case ins == insSelect:
			// By file id (P1 00 or 02) with two bytes of data: 00 A4 00 00 02 00 16.
			switch {
			case sw1 != 0x90 && sw1 != 0x61 && sw1 != 0x62:
				// Not selected: the current file stays (ISO 7816-4).
			case (cmd[2] == 0x00 || cmd[2] == 0x02) && len(cmd) >= 7 && cmd[4] == 2:
				curEF = int(cmd[5])<<8 | int(cmd[6])
			default:
				curEF = -1 // a DF: no EF is current
			}
		}
		chained = -1
		if off < 0 {
			continue
		}
		for j := range data {
			if p := off + j; p >= personalFrom && p < personalTo && data[j] != 0 {
				data[j] = 0
				blanked++
			}
		}
		if sw1 == 0x61 {
			chained = off + len(data)
		}
	}
	return blanked
}
