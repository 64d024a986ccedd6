package apdu

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/.

func FuzzParseCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b) // ff must not modify b: the aliasing check scribbles on in
		c, err := ParseCommand(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(c.Data) > MaxExtendedNc || c.Ne < 0 || c.Ne > MaxExtendedNe {
			t.Fatalf("parsed out of range: Nc=%d Ne=%d", len(c.Data), c.Ne)
		}
		if c.Data != nil && len(c.Data) == 0 {
			t.Fatal("empty non-nil Data")
		}
		out, err := c.Bytes()
		if err != nil {
			t.Fatalf("Bytes() of a parsed command: %v", err)
		}
		// An extended encoding of a command that fits the short form is legal
		// and re-encodes short, so the bytes may differ; the command may not.
		c2, err := ParseCommand(out)
		if err != nil {
			t.Fatalf("ParseCommand(% X) of the re-encoding: %v", out, err)
		}
		if c2.CLA != c.CLA || c2.INS != c.INS || c2.P1 != c.P1 || c2.P2 != c.P2 ||
			c2.Ne != c.Ne || !bytes.Equal(c2.Data, c.Data) {
			t.Fatalf("round trip: %+v became %+v", c, c2)
		}
		// The re-encoding is canonical: never longer than the input, equal to
		// it when as long (any other encoding is the longer extended form),
		// and a fixed point of Bytes.
		if len(out) > len(b) || len(out) == len(b) && !bytes.Equal(out, b) {
			t.Fatalf("% X re-encodes as % X", b, out)
		}
		if out2, _ := c2.Bytes(); !bytes.Equal(out2, out) {
			t.Fatalf("% X re-encodes as % X", out, out2)
		}
		if len(in) > 0 {
			in[len(in)-1] ^= 0xFF
			if !bytes.Equal(c.Data, c2.Data) {
				t.Fatal("Command.Data aliases the input")
			}
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b) // ff must not modify b: the aliasing check scribbles on in
		r, err := ParseResponse(in)
		if len(b) < 2 {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%d bytes: error %v, want ErrMalformed", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		n := len(b) - 2
		if !bytes.Equal(r.Data, b[:n]) || r.SW != uint16(b[n])<<8|uint16(b[n+1]) {
			t.Fatalf("% X parsed as %X %04X", b, r.Data, r.SW)
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatalf("Bytes() = % X, want % X", r.Bytes(), b)
		}
		e := r.Err()
		if r.OK() != (e == nil) || r.OK() != (r.SW == SWOK) {
			t.Fatalf("SW %04X: OK() %v, Err() %v", r.SW, r.OK(), e)
		}
		if e != nil {
			if sw, ok := SW(e); !ok || sw != r.SW {
				t.Fatalf("SW(Err()) = %04X, %v", sw, ok)
			}
			_ = e.Error()
		}
		if n > 0 {
			in[0] ^= 0xFF
			if r.Data[0] == in[0] {
				t.Fatal("Response.Data aliases the input")
			}
		}
	})
}

func FuzzParseTLV(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := ParseTLV(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if ts != nil {
				t.Fatal("objects returned with an error")
			}
			return
		}
		// Every Value lies within its parent's Value, and so within b.
		var walk func(ts []TLV, parent []byte, depth int)
		walk = func(ts []TLV, parent []byte, depth int) {
			for _, o := range ts {
				if depth > maxTLVDepth+1 { // 8 constructed levels, then a primitive
					t.Fatalf("object %d levels deep", depth)
				}
				if !within(o.Value, parent) {
					t.Fatalf("tag %X: Value lies outside its parent", o.Tag)
				}
				if cap(o.Value) != len(o.Value) {
					t.Fatalf("tag %X: Value has spare capacity into the next object", o.Tag)
				}
				if !o.Constructed() && o.Children != nil {
					t.Fatalf("primitive tag %X has children", o.Tag)
				}
				if o.Tag == 0 || tagFirstByte(o.Tag) == 0xFF {
					t.Fatalf("padding byte parsed as tag %X", o.Tag)
				}
				walk(o.Children, o.Value, depth+1)
			}
		}
		walk(ts, b, 1)
		// Each top-level object re-encodes, in the shortest form, to an
		// object that parses back the same.
		for _, o := range ts {
			enc := AppendTLV(nil, o.Tag, o.Value)
			back, err := ParseTLV(enc)
			if err != nil {
				t.Fatalf("tag %X re-encoded as % X: %v", o.Tag, enc, err)
			}
			if len(back) != 1 || back[0].Tag != o.Tag || !bytes.Equal(back[0].Value, o.Value) ||
				len(back[0].Children) != len(o.Children) {
				t.Fatalf("tag %X re-encoded as % X parses as %+v", o.Tag, enc, back)
			}
		}
	})
}

// within reports whether the memory of inner lies inside that of outer.
func within(inner, outer []byte) bool {
	if len(inner) == 0 && len(outer) == 0 {
		return true
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(outer)))
	hi := lo + uintptr(len(outer))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(inner)))
	return p >= lo && p+uintptr(len(inner)) <= hi
}
