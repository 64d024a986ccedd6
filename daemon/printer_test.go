package daemon

import (
	"os"
	"testing"

	"github.com/cardd/cardd/config"
	"github.com/cardd/cardd/printer"
)

// TestRendererFourByte: printer.four_byte "image" reaches the renderer with
// the font loaded, in the gb18030 mode; "text" loads no font.
func TestRendererFourByte(t *testing.T) {
	const font = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
	if _, err := os.Stat(font); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v: install the Debian package fonts-noto-cjk", err)
		}
		t.Skipf("%v: install the Debian package fonts-noto-cjk", err)
	}
	cfg := config.Default()
	r, err := Renderer(&cfg)
	if err != nil || r.Options.FourByte != printer.FourByteText || r.Options.Font != nil {
		t.Fatalf("default: %+v, %v", r.Options, err)
	}
	cfg.Printer.FourByte, cfg.Printer.FontFile = "image", font
	r, err = Renderer(&cfg)
	if err != nil || r.Options.FourByte != printer.FourByteImage || r.Options.Font == nil || r.Options.Mode != printer.TextGB18030 {
		t.Fatalf("four_byte image: %+v, %v", r.Options, err)
	}
}
