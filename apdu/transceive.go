package apdu

import (
	"fmt"
)

// Transmitter sends one raw command APDU and returns the raw response APDU.
// A PC/SC card session is one; so is a simulated card in a unit test.
type Transmitter interface {
	Transmit(cmd []byte) ([]byte, error)
}

// TransmitterFunc adapts a function to a Transmitter.
type TransmitterFunc func(cmd []byte) ([]byte, error)

// Transmit calls f(cmd).
func (f TransmitterFunc) Transmit(cmd []byte) ([]byte, error) { return f(cmd) }

// maxChain bounds GET RESPONSE chaining so that a card answering 61xx forever
// cannot hold a tap for ever.
const maxChain = 32

// Transceive sends c and returns the response data. It is the one place where
// the T=0 rules live (spec "Conventions"): 61xx fetches the rest with
// GET RESPONSE (00 C0 00 00 xx) and 6Cxx sends c again with Le=xx. Any final
// status other than 9000 comes back as a *StatusError, alongside whatever data
// the card sent with it.
func Transceive(t Transmitter, c Command) ([]byte, error) {
	resp, err := TransceiveResponse(t, c)
	if err != nil {
		return nil, err
	}
	return resp.Data, resp.Err()
}

// TransceiveResponse is Transceive without the status check: the caller gets
// the final response, whatever its status word. Errors are transport errors
// and malformed answers only.
func TransceiveResponse(t Transmitter, c Command) (Response, error) {
	raw, err := c.Bytes()
	if err != nil {
		return Response{}, err
	}
	resp, err := send(t, raw)
	if err != nil {
		return Response{}, err
	}
	if sw1 := byte(resp.SW >> 8); sw1 == 0x6C {
		// Wrong Le: the card tells the right one in SW2; send again once.
		c.Ne = decodeLe(int(resp.SW&0xFF), MaxShortNe)
		if raw, err = c.Bytes(); err != nil {
			return Response{}, err
		}
		if resp, err = send(t, raw); err != nil {
			return Response{}, err
		}
	}
	data := resp.Data
	for i := 0; byte(resp.SW>>8) == 0x61; i++ {
		if i == maxChain {
			return Response{}, fmt.Errorf("%w: more than %d GET RESPONSE rounds", ErrMalformed, maxChain)
		}
		get := Command{CLA: getResponseCLA(c.CLA), INS: 0xC0, Ne: decodeLe(int(resp.SW&0xFF), MaxShortNe)}
		raw, _ = get.Bytes() // cannot fail: Ne <= 256
		if resp, err = send(t, raw); err != nil {
			return Response{}, err
		}
		data = append(data, resp.Data...)
	}
	return Response{Data: data, SW: resp.SW}, nil
}

// getResponseCLA is the class byte of the GET RESPONSE that fetches the rest of
// an answer to a command sent with cla: interindustry, on the same logical
// channel, without chaining or secure-messaging bits (ISO 7816-4 §5.4.1).
// Channels 0-3 sit in b2-b1 of 000x xxxx (and of the proprietary 100x xxxx,
// as 80 5C is sent); channels 4-19 in b4-b1 of 01xx xxxx (11xx xxxx is the
// GlobalPlatform proprietary twin). FF is no card class but a PC/SC reader
// pseudo-APDU; readers that answer one with 61xx (ACS) want FF C0 00 00 xx.
func getResponseCLA(cla byte) byte {
	switch {
	case cla == 0xFF:
		return 0xFF
	case cla&0x40 != 0:
		return 0x40 | cla&0x0F
	default:
		return cla & 0x03
	}
}

func send(t Transmitter, raw []byte) (Response, error) {
	out, err := t.Transmit(raw)
	if err != nil {
		return Response{}, err
	}
	return ParseResponse(out)
}
