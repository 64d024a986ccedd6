package localapi

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// qrSVG draws text as a QR code in SVG, one unit per module, with the
// quiet zone of 4 modules ISO/IEC 18004 asks for, at level M (a phone
// reads it off a screen with some glare). The page scales it: the SVG has
// a viewBox and no size, and crispEdges keeps the modules sharp.
func qrSVG(text string) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("drawing the payment QR code: %w", err)
	}
	bits := q.Bitmap() // with the 4-module border
	n := len(bits)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bits {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			// One run of dark modules per rectangle keeps the path short.
			end := x
			for end+1 < len(row) && row[end+1] {
				end++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, end-x+1, end-x+1)
			x = end
		}
	}
	b.WriteString(`"/></svg>`)
	return b.String(), nil
}
