package hostapi

// PathCardBlock gives a terminal the MAC of APPLICATION BLOCK for a card
// on the host's deny list, over the challenge the card just gave
// (docs/upstream-api.md, "/v1/card/block"; docs/epurse.md, "Blocking a card").
const PathCardBlock = "/v1/card/block"

// Block modes, as CardBlockResponse.Mode names them.
const (
	BlockTemporary = "temporary" // APPLICATION BLOCK P2 00: the issuer's desk can lift it
	BlockPermanent = "permanent" // P2 01: final
)

// Error codes of /v1/card/block.
const (
	// CodeCardNotDenied (409): the host MACs a block only for a card on its
	// deny list, so a terminal cannot block any card it meets.
	CodeCardNotDenied = "card_not_denied"
	// CodeNoMaintenanceKey (503): the host's key file holds no application
	// maintenance master key (damk): it cannot block cards on the chip.
	CodeNoMaintenanceKey = "no_maintenance_key"
)

// CardBlockRequest asks for the MAC that blocks Card's e-purse application:
// Challenge is the 4 bytes (8 hex digits) the card answered GET CHALLENGE.
type CardBlockRequest struct {
	Card      string `json:"card"`
	Challenge string `json:"challenge"`
}

// CardBlockResponse is the MAC of APPLICATION BLOCK in Mode over the
// request's challenge; the terminal sends it as 84 1E 00 P2 04 MAC.
type CardBlockResponse struct {
	Mode   string `json:"mode"`   // BlockTemporary or BlockPermanent
	MAC    string `json:"mac"`    // 4 bytes hex
	Reason string `json:"reason"` // the deny list's reason, for the terminal's screen and log
}
