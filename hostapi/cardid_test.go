package hostapi

import "testing"

func TestCheckCardID(t *testing.T) {
	good := []string{"3101000000123456", "uid:04A1B2C3", "uid:04A1B2C3D4E5F6", "uid:04A1B2C3D4E5F6071829"}
	bad := []string{"", "310100000012345", "31010000001234567", "310100000012345X", "uid:", "uid:04a1b2c3",
		"uid:04A1B2", "uid:04A1B2C3D4", "uid:04A1B2C3G0", "UID:04A1B2C3", "uid: 04A1B2C3", "04A1B2C3"}
	for _, id := range good {
		if err := CheckCardID(id); err != nil {
			t.Errorf("CheckCardID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range bad {
		if err := CheckCardID(id); err == nil {
			t.Errorf("CheckCardID(%q) = nil, want an error", id)
		}
	}
	if got := UIDCard([]byte{0x04, 0xa1, 0xb2, 0xc3}); got != "uid:04A1B2C3" || CheckCardID(got) != nil {
		t.Errorf("UIDCard = %q", got)
	}
}
