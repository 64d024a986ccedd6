package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTopupBadValues: each bad kiosk.topup value is refused with a line
// naming the key and the value.
func TestTopupBadValues(t *testing.T) {
	const host = "host:\n  url: http://127.0.0.1:8710\n  secret_file: /s\n"
	cases := []struct {
		name, file string
		env        map[string]string
		key, value string
		in         string
	}{
		{name: "enabled without host", file: "kiosk:\n  topup:\n    enabled: true\n", key: "kiosk.topup.enabled", value: "true", in: "needs host.url"},
		{name: "enabled at a POS", file: host + "mode: pos\nreader:\n  sam_pattern: SAM\nkiosk:\n  topup:\n    enabled: true\n", key: "kiosk.topup.enabled", value: "true", in: "mode is \"pos\""},
		{name: "preset 0", file: "kiosk:\n  topup:\n    presets: [2000, 0]\n", key: "kiosk.topup.presets", value: "0", in: "entry 2 must be fen above 0"},
		{name: "preset over max", env: map[string]string{"CARDD_KIOSK_TOPUP_PRESETS": "2000,60000"}, key: "kiosk.topup.presets", value: "60000", in: "at most kiosk.topup.max_fen (50000)"},
		{name: "preset in yuan", file: "kiosk:\n  topup:\n    presets: [\"20.00\"]\n", key: "kiosk.topup.presets", value: "20.00", in: "entry 1 must be a whole number"},
		{name: "preset twice", file: "kiosk:\n  topup:\n    presets: [2000, 2000]\n", key: "kiosk.topup.presets", value: "2000", in: "repeats"},
		{name: "nine presets", file: "kiosk:\n  topup:\n    presets: [1, 2, 3, 4, 5, 6, 7, 8, 9]\n", key: "kiosk.topup.presets", value: "9 entries", in: "at most 8"},
		{name: "max 0", file: "kiosk:\n  topup:\n    max_fen: 0\n    presets: []\n", key: "kiosk.topup.max_fen", value: "0", in: "above 0"},
		{name: "wait 5s", file: "kiosk:\n  topup:\n    wait: 5s\n", key: "kiosk.topup.wait", value: "5s", in: "from 30s to 30m0s"},
		{name: "poll 100ms", env: map[string]string{"CARDD_KIOSK_TOPUP_POLL": "100ms"}, key: "kiosk.topup.poll", value: "100ms", in: "from 500ms to 30s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var args []string
			if tc.file != "" {
				args = []string{"--config", writeFile(t, tc.file)}
			}
			c, err := Load(flags(t, args...))
			var ve *ValidationError
			if !errors.As(err, &ve) || c != nil {
				t.Fatalf("Load = %+v, %v; want a *ValidationError", c, err)
			}
			if ve.Key != tc.key || ve.Value != tc.value || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("error %q (key %q value %q), want key %q value %q and %q", err, ve.Key, ve.Value, tc.key, tc.value, tc.in)
			}
		})
	}
}

// TestTopupKeys: the keys reach the Config from a file and the environment.
func TestTopupKeys(t *testing.T) {
	cleanEnv(t)
	t.Setenv("CARDD_KIOSK_TOPUP_PRESETS", "1000,3000")
	path := writeFile(t, "host:\n  url: http://127.0.0.1:8710\n  secret_file: /s\nkiosk:\n  topup:\n    enabled: true\n    max_fen: 30000\n    wait: 90s\n")
	c, err := Load(flags(t, "--config", path))
	if err != nil {
		t.Fatal(err)
	}
	tc := c.Kiosk.Topup
	if !tc.Enabled || !slices.Equal(tc.PresetsFen(), []int64{1000, 3000}) || tc.MaxFen != 30000 || tc.Wait != 90*time.Second || tc.Poll != 2*time.Second {
		t.Fatalf("kiosk.topup = %+v", tc)
	}
}
