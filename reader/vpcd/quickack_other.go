//go:build !linux

package vpcd

import "net"

// quickAck does nothing: TCP_QUICKACK is Linux's. Without it the card is
// only slower, by the delayed ACK the Linux version's comment measures.
func quickAck(net.Conn) {}
