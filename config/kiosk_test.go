package config

import (
	"net/url"
	"testing"
)

func TestInvoiceLink(t *testing.T) {
	k := KioskConfig{InvoiceURL: "https://fp.example.cn/k/{order}?a={amount}&o={order}"}
	for _, tc := range []struct {
		order string
		fen   int64
		want  string
	}{
		{"TU-20261203-0001", 10000, "https://fp.example.cn/k/TU-20261203-0001?a=100.00&o=TU-20261203-0001"},
		{"a b&c=d/e?f#g+h%", 5, "https://fp.example.cn/k/a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25?a=0.05&o=a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25"},
		{"订单1", 123456789012, "https://fp.example.cn/k/%E8%AE%A2%E5%8D%951?a=1234567890.12&o=%E8%AE%A2%E5%8D%951"},
		{"x", 1, "https://fp.example.cn/k/x?a=0.01&o=x"},
	} {
		got := k.InvoiceLink(tc.order, tc.fen)
		if got != tc.want {
			t.Errorf("InvoiceLink(%q, %d) = %q, want %q", tc.order, tc.fen, got, tc.want)
			continue
		}
		// What a browser reads back is the order and amount as given.
		u, err := url.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		if o := u.Query().Get("o"); o != tc.order {
			t.Errorf("%q: the query's order reads back %q", got, o)
		}
	}
}

func TestDefaultKioskKeepsTheCampusLook(t *testing.T) {
	k := Default().Kiosk
	if k.Title != "" || k.Language != "zh-CN" || k.IdleSeconds != DefaultIdleSeconds || k.Colors.Primary != "#0b4f8a" || k.InvoiceURL != "" {
		t.Errorf("default kiosk %+v", k)
	}
}
