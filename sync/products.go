package sync

import (
	"github.com/cardd/cardd/hostapi"
	"github.com/cardd/cardd/offline"
)

// pageProducts adds a pull answer's card products to its page: the
// product of every pending credit's card (a card the terminal may load),
// then the product changes in order, and the host's product list when it
// sent one (a host older than products sends none, and the terminal keeps
// what it has).
func pageProducts(page *offline.PullPage, r hostapi.PullResponse) {
	for _, c := range r.Credits {
		if c.State == hostapi.CreditPending && c.CardProduct != "" {
			page.CardProducts = append(page.CardProducts, offline.ProductChange{Card: c.Card, Product: c.CardProduct})
		}
	}
	for _, c := range r.CardProducts {
		page.CardProducts = append(page.CardProducts, offline.ProductChange{Card: c.Card, Product: c.Product})
	}
	if r.Products != nil {
		page.Products = make([]offline.Product, 0, len(r.Products))
		for _, p := range r.Products {
			page.Products = append(page.Products, offline.Product{Name: p.Name, CapFen: p.CapFen, ValidUntil: p.ValidUntil})
		}
	}
}
