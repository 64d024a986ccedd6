// Package config is cardd's configuration: built-in defaults, a YAML file,
// CARDD_* environment variables and command-line flags, merged through
// github.com/spf13/viper in that order of increasing precedence, then
// validated so that a bad value is refused at start with a line naming the key.
//
// # Sources
//
//  1. Defaults: [Default].
//  2. The YAML file named by --config, or by $CARDD_CONFIG when the flag is not
//     given. There is no search path: without either, no file is read, so what
//     the daemon runs with never depends on a file the operator did not name.
//     An explicit --config "" means no file even when $CARDD_CONFIG is set.
//  3. The environment: every key has one variable, CARDD_ followed by the key
//     in upper case with dots as underscores (reader.card_pattern is
//     CARDD_READER_CARD_PATTERN). An empty variable counts as unset (viper's
//     default), so an empty line in a systemd EnvironmentFile changes nothing.
//     The lists epurse.aids, epurse.own_issuers, epurse.log_files, door.card_families, api.allowed_hosts and kiosk.topup.presets are
//     comma-separated there.
//  4. The flags of [RegisterFlags] that were given on the command line.
//
// # Keys
//
//	key                  env                        flag           default
//	mode                 CARDD_MODE                 --mode         kiosk (kiosk|pos|door)
//	terminal.id          CARDD_TERMINAL_ID          --terminal-id  "000000000001" (12 hex digits)
//	reader.card_pattern  CARDD_READER_CARD_PATTERN  --reader-card  ".*" (Go regexp)
//	reader.sam_pattern   CARDD_READER_SAM_PATTERN   --reader-sam   "" (Go regexp; empty = no SAM)
//	epurse.aids          CARDD_EPURSE_AIDS                         every card profile's DF name (docs/cards.md), 1-16 bytes of hex each
//	epurse.own_issuers   CARDD_EPURSE_OWN_ISSUERS                  [0001000000000000] (EF 0x15 issuer ids of our own cards)
//	epurse.purse         CARDD_EPURSE_PURSE                        ep (ep|ed)
//	epurse.log_files     CARDD_EPURSE_LOG_FILES                    [0x18] (SFIs 1..30)
//	epurse.log_records   CARDD_EPURSE_LOG_RECORDS                  5 (1..10)
//	store.path           CARDD_STORE_PATH                          /var/lib/cardd/cardd.db
//	store.retention      CARDD_STORE_RETENTION                     4320h (180 days; >= 24h)
//	host.url             CARDD_HOST_URL                            "" (offline)
//	host.secret_file     CARDD_HOST_SECRET_FILE                    "" (required with host.url)
//	host.ca_file         CARDD_HOST_CA_FILE                        "" (PEM CA an https:// host must chain to; "": the system roots)
//	host.pin_sha256      CARDD_HOST_PIN_SHA256                     "" (SHA-256 of the host certificate's public key, hex or base64; checked on top of the CA)
//	host.insecure        CARDD_HOST_INSECURE                       false (true allows http:// to a host off loopback)
//	api.listen           CARDD_API_LISTEN                          127.0.0.1:8711
//	api.token_file       CARDD_API_TOKEN_FILE                      "" (required off loopback; none: a random per-run token)
//	api.allowed_hosts    CARDD_API_ALLOWED_HOSTS                   [] (more Host names or addresses the API answers to)
//	log.level            CARDD_LOG_LEVEL            --log-level    info (debug|info|warn|error)
//	log.format           CARDD_LOG_FORMAT           --log-format   text (text|json)
//	tap.timeout          CARDD_TAP_TIMEOUT                         3s (> 0)
//	load.balance_cap     CARDD_LOAD_BALANCE_CAP                    "1000.00" (yuan; most a card may hold after a load)
//	pos.daily_limit      CARDD_POS_DAILY_LIMIT                     "200.00" (yuan a card spends a day without its PIN; "0": none)
//	pos.max_purchase     CARDD_POS_MAX_PURCHASE                    "500.00" (yuan; the largest sale that can be armed)
//	pos.sam_apps         CARDD_POS_SAM_APPS                        ["1001"] (PSAM purchase DF: file id or AID, hex)
//	pos.void_window      CARDD_POS_VOID_WINDOW                     5m (1s to 24h: how long after a sale it may be voided)
//	pos.periods          CARDD_POS_PERIODS                         [] (meal periods: name, start, end, mode keyed|fixed|menu, price, prices, max_count, max_amount, class_prices, discounts)
//	pos.classes          CARDD_POS_CLASSES                         {} (identity classes: name to card types in hex, EF 0x15 byte 28 "02" or bytes 28-29 "0201", or [])
//	pos.require_shift    CARDD_POS_REQUIRE_SHIFT                   false (sell only while a cashier's shift is open)
//	pos.close_cards      CARDD_POS_CLOSE_CARDS                     true (a card the host asked to close has its balance debited at its next tap)
//	psam.profile         CARDD_PSAM_PROFILE                        cardd (built-in cardd|cityunion|tunion and/or settings; docs/psam.md)
//	psam.families.campus CARDD_PSAM_FAMILIES_CAMPUS                 "" (this family's PSAM profile; "": psam.profile)
//	psam.families.cityunion CARDD_PSAM_FAMILIES_CITYUNION              "" (this family's PSAM profile; "": psam.profile)
//	psam.families.tunion CARDD_PSAM_FAMILIES_TUNION                 "" (this family's PSAM profile; "": psam.profile)
//	psam.families.shanghai CARDD_PSAM_FAMILIES_SHANGHAI               "" (this family's PSAM profile; "": psam.profile)
//	psam.families.shenzhen CARDD_PSAM_FAMILIES_SHENZHEN               "" (this family's PSAM profile; "": psam.profile)
//	psam.families.beijing CARDD_PSAM_FAMILIES_BEIJING                "" (this family's PSAM profile; "": psam.profile)
//	psam.families.wuhan  CARDD_PSAM_FAMILIES_WUHAN                  "" (this family's PSAM profile; "": psam.profile)
//	psam.families.suzhou CARDD_PSAM_FAMILIES_SUZHOU                 "" (this family's PSAM profile; "": psam.profile)
//	psam.families.generic CARDD_PSAM_FAMILIES_GENERIC                "" (this family's PSAM profile; "": psam.profile)
//	mifare.key_file      CARDD_MIFARE_KEY_FILE                     "" (M1 wallet key file, 0600 JSON; "": no M1 wallets)
//	mifare.slot_convention CARDD_MIFARE_SLOT_CONVENTION            acs (acs: FF 82 P1 00 slots 0/1; nonvolatile: P1 20)
//	door.groups          CARDD_DOOR_GROUPS                         ["*"] (access-list groups this door admits; * all)
//	door.load_credits    CARDD_DOOR_LOAD_CREDITS                   true (write pending top-ups after opening; needs host.url)
//	door.card_families   CARDD_DOOR_CARD_FAMILIES                  [campus, tunion] (card profiles whose numbers the door takes)
//	door.relay.port      CARDD_DOOR_RELAY_PORT                     "" (relay board's serial port; required in mode door)
//	door.relay.baud      CARDD_DOOR_RELAY_BAUD                     9600
//	door.relay.open      CARDD_DOOR_RELAY_OPEN                     "A00101A2" (hex bytes that release the lock)
//	door.relay.close     CARDD_DOOR_RELAY_CLOSE                    "A00100A1" (hex bytes that lock again)
//	door.relay.hold      CARDD_DOOR_RELAY_HOLD                     3s (100ms..60s the door stays open)
//	printer.enabled      CARDD_PRINTER_ENABLED                     false (true needs printer.port)
//	printer.port         CARDD_PRINTER_PORT                        "" (serial device, e.g. /dev/ttyUSB0)
//	printer.baud         CARDD_PRINTER_BAUD                        9600
//	printer.data_bits    CARDD_PRINTER_DATA_BITS                   8 (5..8)
//	printer.parity       CARDD_PRINTER_PARITY                      none (none, odd, even, mark, space)
//	printer.stop_bits    CARDD_PRINTER_STOP_BITS                   "1" (1 or 2)
//	printer.flow_control CARDD_PRINTER_FLOW_CONTROL                none (none or xonxoff)
//	printer.paper        CARDD_PRINTER_PAPER                       58 (mm: 58 = 32 columns, 80 = 48)
//	printer.text         CARDD_PRINTER_TEXT                        gb18030 (gb18030, gbk or raster)
//	printer.font_file    CARDD_PRINTER_FONT_FILE                   "" (CJK font; required for raster)
//	printer.four_byte    CARDD_PRINTER_FOUR_BYTE                   text (text or image: a line with a 4-byte character drawn with font_file)
//	printer.status_checks CARDD_PRINTER_STATUS_CHECKS              true (DLE EOT after each receipt, and before one unless it follows one confirmed ready)
//	printer.status_timeout CARDD_PRINTER_STATUS_TIMEOUT            500ms
//	printer.code         CARDD_PRINTER_CODE                        qr (qr, code128 or none)
//	receipt.merchant     CARDD_RECEIPT_MERCHANT                    "校园一卡通" (the receipt's heading)
//	receipt.footer       CARDD_RECEIPT_FOOTER                      ["请妥善保管小票"] (lines at the bottom)
//	receipt.statement_lines CARDD_RECEIPT_STATEMENT_LINES          5 (0..50; the card's newest transactions on a balance slip)
//	kiosk.title          CARDD_KIOSK_TITLE                         "" (header title, both languages; empty: 校园卡自助服务 / Campus card self-service)
//	kiosk.merchant       CARDD_KIOSK_MERCHANT                      "" (name shown beside the title)
//	kiosk.colors.primary CARDD_KIOSK_COLORS_PRIMARY                "#0b4f8a" (header and buttons; #rgb or #rrggbb only)
//	kiosk.colors.background CARDD_KIOSK_COLORS_BACKGROUND          "#eef2f6"
//	kiosk.colors.text    CARDD_KIOSK_COLORS_TEXT                   "#17202c"
//	kiosk.idle_seconds   CARDD_KIOSK_IDLE_SECONDS                  60 (5..3600 without a touch, then the idle screen in kiosk.language; 0: never)
//	kiosk.language       CARDD_KIOSK_LANGUAGE                      zh-CN (zh-CN or en: first language, and the one the idle screen returns to)
//	kiosk.invoice_url    CARDD_KIOSK_INVOICE_URL                   "" (http(s) URL with {order} and {amount}: the invoice QR code after a top-up)
//	kiosk.topup.enabled  CARDD_KIOSK_TOPUP_ENABLED                 false (top-up by phone at the kiosk; needs mode kiosk and host.url)
//	kiosk.topup.presets  CARDD_KIOSK_TOPUP_PRESETS                 [2000, 5000, 10000, 20000] (fen; the amount buttons, at most 8)
//	kiosk.topup.max_fen  CARDD_KIOSK_TOPUP_MAX_FEN                 50000 (fen; the keypad's most, lowered to the card's room under load.balance_cap)
//	kiosk.topup.wait     CARDD_KIOSK_TOPUP_WAIT                    3m (30s..30m the payment screen waits, then the order is closed)
//	kiosk.topup.poll     CARDD_KIOSK_TOPUP_POLL                    2s (500ms..30s; the most often the host is asked about an unpaid order)
//
// The amounts in yuan (load.balance_cap, pos.daily_limit, pos.max_purchase)
// are strings ("1000.00") or, in the file, YAML numbers (1000, 1000.5). A
// number is read as written, never through a float: more than two decimals
// (1000.123) is refused, as in a string.
//
// A key in the file that cardd does not know is an error, not ignored: an
// integrator's typo (card_patern) must not silently leave the default in force.
// Unknown CARDD_* variables are not checked, because other tools of the project
// (the simulators, the scripts) share the prefix.
//
// # Errors
//
// Every error is one line. [Load] returns a [*FileError] when the file cannot be
// read or parsed, otherwise every bad key as a [*ValidationError], joined with
// errors.Join in the order of the table above (unknown keys last, sorted):
//
//	config: file "/etc/cardd/cardd.yaml": open: no such file or directory
//	config: reader.card_pattern = "[": invalid regexp: error parsing regexp: missing closing ]: `[`
//	config: reader.card_patern = "x": unknown key in /etc/cardd/cardd.yaml (did you mean reader.card_pattern?)
//
// The daemon prints them and exits with code 2.
//
// # Secrets
//
// The configuration holds the paths of secret files, never secrets; read them
// with [ReadSecretFile], which refuses a file that group or others may read.
// cardd.example.yaml in this folder is a commented example file.
package config
