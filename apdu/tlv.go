package apdu

import (
	"fmt"
)

// TLV is one BER-TLV data object (ISO 7816-4 §5.2, ISO 8825-1). For a
// constructed tag, Children holds the parsed contents and Value the raw bytes.
type TLV struct {
	Tag      uint32
	Value    []byte
	Children []TLV
}

// Constructed reports whether bit 6 of the tag's first byte is set.
func (t TLV) Constructed() bool { return tagFirstByte(t.Tag)&0x20 != 0 }

func tagFirstByte(tag uint32) byte {
	for tag > 0xFF {
		tag >>= 8
	}
	return byte(tag)
}

// maxTLVDepth bounds nesting: no FCI is deeper, and a hostile card must not
// be able to drive recursion.
const maxTLVDepth = 8

// ParseTLV parses a sequence of BER-TLV objects, descending into constructed
// ones. Padding bytes 00 and FF between objects are skipped, as ISO 7816-4
// allows. Tags of up to 3 bytes and lengths of up to 3 bytes (definite form)
// are accepted; anything else is ErrMalformed.
func ParseTLV(b []byte) ([]TLV, error) { return parseTLV(b, 0) }

func parseTLV(b []byte, depth int) ([]TLV, error) {
	if depth > maxTLVDepth {
		return nil, fmt.Errorf("%w: TLV nested deeper than %d", ErrMalformed, maxTLVDepth)
	}
	var out []TLV
	for i := 0; i < len(b); {
		if b[i] == 0x00 || b[i] == 0xFF {
			i++
			continue
		}
		tag, n, err := readTag(b[i:])
		if err != nil {
			return nil, err
		}
		i += n
		length, n, err := readLength(b[i:])
		if err != nil {
			return nil, fmt.Errorf("tag %X: %w", tag, err)
		}
		i += n
		if length > len(b)-i {
			return nil, fmt.Errorf("%w: tag %X says %d bytes, %d left", ErrMalformed, tag, length, len(b)-i)
		}
		t := TLV{Tag: tag, Value: b[i : i+length : i+length]}
		if t.Constructed() {
			if t.Children, err = parseTLV(t.Value, depth+1); err != nil {
				return nil, fmt.Errorf("in tag %X: %w", tag, err)
			}
		}
		out = append(out, t)
		i += length
	}
	return out, nil
}

func readTag(b []byte) (tag uint32, n int, err error) {
	tag, n = uint32(b[0]), 1
	if b[0]&0x1F != 0x1F {
		return tag, n, nil
	}
	for {
		if n == len(b) {
			return 0, 0, fmt.Errorf("%w: tag truncated", ErrMalformed)
		}
		if n == 3 {
			return 0, 0, fmt.Errorf("%w: tag longer than 3 bytes", ErrMalformed)
		}
		tag = tag<<8 | uint32(b[n])
		n++
		if b[n-1]&0x80 == 0 {
			return tag, n, nil
		}
	}
}

func readLength(b []byte) (length, n int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("%w: length missing", ErrMalformed)
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7F)
	if k == 0 || k > 3 {
		return 0, 0, fmt.Errorf("%w: length form %02X not supported", ErrMalformed, b[0])
	}
	if len(b) < 1+k {
		return 0, 0, fmt.Errorf("%w: length truncated", ErrMalformed)
	}
	for _, c := range b[1 : 1+k] {
		length = length<<8 | int(c)
	}
	return length, 1 + k, nil
}

// FindTLV searches ts and their descendants, depth first, for the first object
// with the given tag.
func FindTLV(ts []TLV, tag uint32) (TLV, bool) {
	for _, t := range ts {
		if t.Tag == tag {
			return t, true
		}
		if c, ok := FindTLV(t.Children, tag); ok {
			return c, true
		}
	}
	return TLV{}, false
}

// AppendTLV encodes one primitive or constructed object (value given raw),
// in the shortest definite length form. The card simulator builds its FCI with it.
func AppendTLV(b []byte, tag uint32, value []byte) []byte {
	switch {
	case tag > 0xFFFF:
		b = append(b, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFF:
		b = append(b, byte(tag>>8), byte(tag))
	default:
		b = append(b, byte(tag))
	}
	switch n := len(value); {
	case n < 0x80:
		b = append(b, byte(n))
	case n <= 0xFF:
		b = append(b, 0x81, byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x82, byte(n>>8), byte(n))
	default:
		b = append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, value...)
}
