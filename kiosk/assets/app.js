// cardd kiosk screen. No framework, no build step: the daemon serves this file
// as is. The page reads its title, colours, idle time and language from
// /v1/kiosk/config, listens to /v1/events (server-sent events) and asks for
// receipts with POST /v1/receipts; all on the daemon's own origin. What the
// configuration says goes into text (textContent) and CSS custom properties
// checked to be hex colours, never into markup.
//
// State lives in `model`; every change calls render(), which draws the whole
// screen from it in the chosen language, so the language toggle is only a
// re-render. body[data-state] is idle | reading | card | error;
// body[data-tap] is pending while a tap goes on and done when it ended.
//
// Language: document.documentElement.lang is "zh-CN" or "en"; each change
// dispatches the event "kiosk-lang" on document, for screens drawn by other
// scripts. After kiosk.idle_seconds without a touch (and no card on the
// reader) the page goes back to the idle screen in kiosk.language.
(function () {
  "use strict";

  // How long the last tap stays on screen after the card left: 20 s, or
  // ?linger=<seconds> in the page's address (1 to 600).
  var LINGER_MS = (function () {
    var m = /[?&]linger=(\d+(?:\.\d+)?)(?:&|$)/.exec(window.location.search);
    var s = m ? parseFloat(m[1]) : 0;
    return s >= 1 && s <= 600 ? s * 1000 : 20000;
  })();
  // How long a receipt may wait in the queue before the page says so.
  var PRINT_SLOW_MS = 30000;
  // What /v1/kiosk/config said; the page's own look until it answers.
  var conf = { title: "", merchant: "", idle: 60, lang: "zh", invoice: false };
  var HEX_COLOUR = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;

  var T = {
    zh: {
      title: "校园卡自助服务",
      toggle: "English",
      disconnected: "连接中断",
      tap: "请刷卡",
      idleHint: "请将校园卡放在读卡区，直到显示余额",
      noReader: "读卡器未连接，请联系工作人员",
      noService: "读卡服务未运行，请联系工作人员",
      reading: "读卡中…",
      readingHint: "请勿移开卡片",
      cardNumber: "卡号",
      holder: "持卡人",
      issuer: "卡种",
      validity: "有效期",
      validRange: "{from} 至 {to}",
      validTo: "至 {to}",
      balance: "余额",
      unit: "元",
      transactions: "最近交易",
      txLoading: "正在读取交易记录…",
      txNone: "暂无交易记录",
      kind_load: "充值",
      kind_purchase: "消费",
      kind_composite_purchase: "复合消费",
      kind_other: "其他交易",
      topupApplied: "充值 {amount} 元已到账",
      subsidyApplied: "补助 {amount} 元已到账",
      topupWaiting: "充值 {amount} 元暂未写入卡内，请稍后再刷卡或联系卡务中心",
      hostOffline: "网络暂时不通，充值将在下次刷卡时到账",
      print: "打印小票",
      printing: "打印中…",
      printed: "已打印，请取走小票",
      printQueued: "小票已排队，稍后打印",
      printerNotReady: "打印机暂不可用，小票将稍后打印",
      printUnknown: "打印状态不明，如未取到小票请联系工作人员",
      printNoCard: "请先刷卡再打印",
      printNoPrinter: "本机未配置打印机",
      printNotAllowed: "无法打印，请联系工作人员",
      printNoConnection: "连接中断，请稍后再试",
      printFailed: "打印失败，请联系工作人员",
      out_card_removed_too_early: "拿开太快，请重新刷卡",
      out_card_denied: "此卡已冻结，请联系卡务中心",
      out_card_expired: "卡已过期，请到卡务中心办理",
      out_card_not_recognised: "已读取余额，此卡不能在本机充值或消费",
      out_timeout: "读卡超时，请重新刷卡",
      out_application_blocked: "此卡已锁定，请联系卡务中心",
      out_not_an_epurse_card: "无法识别此卡，请使用校园卡",
      out_pcscd_unavailable: "读卡服务未运行，请联系工作人员",
      out_reader_gone: "读卡器已断开，请联系工作人员",
      out_card_error: "读卡失败，请重新刷卡",
      out_reader_busy: "读卡器忙，请稍候再刷卡",
      out_stopped: "终端正在重启，请稍候再刷卡",
      out_other: "操作未完成，请重新刷卡",
      leave: "可以移开卡片",
      invoice: "开票",
      invoiceTitle: "扫码开票",
      invoiceHint: "请用手机扫描二维码，在开票页面填写抬头",
      invoiceAmount: "{amount} 元",
      invoiceOrder: "订单号 {order}",
      invoiceLoading: "正在生成开票二维码…",
      invoiceFailed: "暂时无法开票，请联系工作人员",
      invoicePrint: "打印二维码",
      invoiceAgain: "此订单的开票二维码已打印过",
      invoiceNext: "下一笔",
      close: "返回"
    },
    en: {
      title: "Campus card self-service",
      toggle: "中文",
      disconnected: "Disconnected",
      tap: "Tap your card",
      idleHint: "Hold your campus card on the reader until your balance shows",
      noReader: "The card reader is not connected. Please ask staff.",
      noService: "The card reader service is not running. Please ask staff.",
      reading: "Reading…",
      readingHint: "Keep the card on the reader",
      cardNumber: "Card",
      holder: "Holder",
      issuer: "Card",
      validity: "Valid",
      validRange: "{from} to {to}",
      validTo: "until {to}",
      balance: "Balance",
      unit: "CNY",
      transactions: "Recent transactions",
      txLoading: "Reading transactions…",
      txNone: "No transactions yet",
      kind_load: "Top-up",
      kind_purchase: "Purchase",
      kind_composite_purchase: "Purchase",
      kind_other: "Other",
      topupApplied: "Top-up {amount} applied",
      subsidyApplied: "Subsidy {amount} received",
      topupWaiting: "Top-up {amount} is not on the card yet. Tap again later or contact the card office.",
      hostOffline: "Network down: your top-up will reach the card next time you tap",
      print: "Print receipt",
      printing: "Printing…",
      printed: "Printed. Please take your receipt",
      printQueued: "Receipt queued, it will print shortly",
      printerNotReady: "Printer not ready: the receipt will print later",
      printUnknown: "Not sure the receipt printed. If you did not get it, please ask staff",
      printNoCard: "Please tap your card first",
      printNoPrinter: "No printer on this kiosk",
      printNotAllowed: "Cannot print. Please ask staff",
      printNoConnection: "Disconnected. Please try again",
      printFailed: "Printing failed. Please ask staff",
      out_card_removed_too_early: "Card removed too early. Please tap again",
      out_card_denied: "Card frozen. Please contact the card office",
      out_card_expired: "Card expired. Please visit the card office",
      out_card_not_recognised: "Balance read. This card cannot top up or pay here",
      out_timeout: "Reading took too long. Please tap again",
      out_application_blocked: "Card locked. Please contact the card office",
      out_not_an_epurse_card: "Card not recognised. Please use your campus card",
      out_pcscd_unavailable: "The card reader service is not running. Please ask staff",
      out_reader_gone: "The card reader was disconnected. Please ask staff",
      out_card_error: "Could not read the card. Please tap again",
      out_reader_busy: "The reader is busy. Please wait a moment and tap again",
      out_stopped: "The kiosk is restarting. Please tap again in a moment",
      out_other: "Something went wrong. Please tap again",
      leave: "You may remove your card",
      invoice: "Invoice",
      invoiceTitle: "Scan for your invoice",
      invoiceHint: "Scan the code with your phone and fill in the invoice title there",
      invoiceAmount: "CNY {amount}",
      invoiceOrder: "Order {order}",
      invoiceLoading: "Making the invoice code…",
      invoiceFailed: "No invoice right now. Please ask staff",
      invoicePrint: "Print the code",
      invoiceAgain: "This order's invoice code was printed already",
      invoiceNext: "Next top-up",
      close: "Back"
    }
  };

  var model = {
    lang: "zh",
    state: "idle", // idle | reading | card | error
    conn: false, // the event stream is up
    status: null, // the last /v1/status seen (hello, reader events)
    gotHello: false,
    cardPresent: false,
    card: null, // the card of the current tap
    tap: null, // how the current tap ended; null while it goes on
    leave: false, // card.leave came: the card may go while the tap finishes
    // print: phase "" | printing | queued | slow | printed | unknown | error
    print: newPrint(),
    // invoice: phase "" | loading | shown | error, for order; its slip in print
    invoice: { phase: "", order: "", data: null, print: newPrint() }
  };
  var receiptsSeen = {}; // receipt id -> state, for events that beat the POST's answer
  var lingerTimer = 0;
  var idleTimer = 0;

  var body = document.body;
  function $(id) { return document.getElementById(id); }

  // ---------- helpers ----------

  function fmt(s, args) {
    return s.replace(/\{(\w+)\}/g, function (m, k) {
      return args && args[k] !== undefined ? String(args[k]) : m;
    });
  }

  function token() {
    var m = document.querySelector('meta[name="cardd-token"]');
    var t = m ? m.getAttribute("content") || "" : "";
    // The placeholder itself means the page was not served by the daemon.
    return t === "{{" + "TOKEN}}" ? "" : t;
  }

  function printerView() {
    return (model.status && model.status.printer) || null;
  }

  function appliedLoads(tap) {
    return ((tap && tap.loads) || []).filter(function (l) { return l && l.applied; });
  }

  function waitingLoads(tap) {
    return ((tap && tap.loads) || []).filter(function (l) { return l && !l.applied; });
  }

  function clearLinger() {
    if (lingerTimer) { clearTimeout(lingerTimer); lingerTimer = 0; }
  }

  // startLinger shows the last tap for a while, then goes back to idle.
  function startLinger() {
    clearLinger();
    lingerTimer = setTimeout(function () {
      lingerTimer = 0;
      toIdle();
    }, LINGER_MS);
  }

  function newPrint() { return { phase: "", id: 0, err: "", timer: 0 }; }

  function clearPrint(p) {
    if (p.timer) { clearTimeout(p.timer); p.timer = 0; }
  }

  function resetPrint() {
    clearPrint(model.print);
    model.print = newPrint();
  }

  function closeInvoice() {
    clearPrint(model.invoice.print);
    model.invoice = { phase: "", order: "", data: null, print: newPrint() };
  }

  function toIdle() {
    clearLinger();
    resetPrint();
    closeInvoice();
    model.state = "idle";
    model.card = null;
    model.tap = null;
    model.leave = false;
    render();
  }

  // armIdle starts the wait for a touch again: after conf.idle seconds
  // without one, the idle screen in the configured language.
  function armIdle() {
    if (idleTimer) { clearTimeout(idleTimer); idleTimer = 0; }
    if (conf.idle > 0) idleTimer = setTimeout(onIdle, conf.idle * 1000);
  }

  function onIdle() {
    idleTimer = 0;
    // A card on the reader is someone still there.
    if (model.cardPresent) { armIdle(); return; }
    if (model.state !== "idle" || model.invoice.phase) toIdle();
    setLang(conf.lang);
  }

  function mergeCard(old, card) {
    if (!card) return old;
    if (!old || old.number !== card.number) return card;
    var out = {};
    var k;
    for (k in old) if (Object.prototype.hasOwnProperty.call(old, k)) out[k] = old[k];
    for (k in card) if (Object.prototype.hasOwnProperty.call(card, k) && card[k] !== undefined && card[k] !== null) out[k] = card[k];
    return out;
  }

  // ---------- events ----------

  function onStatus(st) {
    if (!st) return;
    model.status = st;
  }

  function cardPresentInStatus() {
    var rs = (model.status && model.status.readers) || [];
    for (var i = 0; i < rs.length; i++) if (rs[i].card_present) return true;
    return false;
  }

  function handle(type, data) {
    var ev;
    try { ev = JSON.parse(data); } catch (e) { return; }
    if (!ev || typeof ev !== "object") return;
    type = type || ev.type;
    if (type !== "hello" && type !== "printer" && type !== "reader" && type !== "receipt") armIdle();
    switch (type) {
      case "hello":
        model.gotHello = true;
        model.conn = true;
        onStatus(ev.status);
        // Events may have been missed while the stream was down.
        if (model.state === "reading" && !cardPresentInStatus()) { toIdle(); return; }
        break;
      case "card.present":
        clearLinger();
        resetPrint();
        closeInvoice();
        model.leave = false;
        model.cardPresent = true;
        model.card = null;
        model.tap = null;
        model.state = "reading";
        break;
      case "card.balance":
        clearLinger();
        if (model.tap) { resetPrint(); model.tap = null; } // a new read without card.present
        model.cardPresent = true;
        model.card = mergeCard(model.card, ev.card);
        model.state = "card";
        break;
      case "card.leave":
        // The money moved: only the after-work (the receipt, the host's
        // report) remains, and the card need not wait for it.
        model.card = mergeCard(model.card, ev.card);
        model.leave = true;
        if (model.state === "reading") model.state = "card";
        break;
      case "card.tap":
        clearLinger();
        resetPrint();
        model.card = mergeCard(model.card, ev.card);
        model.tap = ev.tap || { outcome: "card_error", loads: [] };
        model.state = model.tap.outcome === "ok" ? "card" : "error";
        if (!model.cardPresent) startLinger();
        break;
      case "card.removed":
        model.cardPresent = false;
        model.leave = false;
        if (model.state !== "idle") startLinger();
        break;
      case "reader":
        onStatus(ev.status);
        // A reader that is back ends an error that said it was gone.
        if (model.state === "error" && model.tap &&
            (model.tap.outcome === "reader_gone" || model.tap.outcome === "pcscd_unavailable") &&
            hasCardReader()) { toIdle(); return; }
        break;
      case "printer":
        if (ev.printer) {
          model.status = model.status || {};
          model.status.printer = ev.printer;
        }
        break;
      case "receipt":
        if (ev.receipt) onReceipt(ev.receipt.id, ev.receipt.state);
        break;
      default:
        return;
    }
    render();
  }

  function onReceipt(id, state) {
    receiptsSeen[id] = state;
    var ids = Object.keys(receiptsSeen);
    if (ids.length > 50) delete receiptsSeen[ids[0]];
    [model.print, model.invoice.print].forEach(function (p) {
      if (p.id && p.id === id) setReceiptState(p, state);
    });
  }

  function setReceiptState(p, state) {
    if (p.phase === "printed" || p.phase === "unknown" || p.phase === "error") return;
    if (state === "printed") {
      p.phase = "printed";
    } else if (state === "queued" || state === "sending") {
      if (p.phase !== "slow") p.phase = "queued";
      return;
    } else if (state === "unknown") {
      p.phase = "unknown";
    } else {
      p.phase = "error";
      p.err = "printFailed";
    }
    clearPrint(p);
  }

  var TYPES = ["hello", "card.present", "card.balance", "card.leave", "card.tap", "card.removed", "reader", "printer", "receipt"];
  var es = null;
  var retryTimer = 0;

  // tell hands each event to the page's other scripts (topup.js) once the
  // screen has drawn it: "kiosk-event" on document, {type, event}.
  function tell(type, data) {
    var ev;
    try { ev = JSON.parse(data); } catch (e) { return; }
    document.dispatchEvent(new CustomEvent("kiosk-event", { detail: { type: type || (ev && ev.type), event: ev } }));
  }

  function connect() {
    retryTimer = 0;
    if (typeof EventSource === "undefined") return;
    // The page's credential gets it one of the streams kept for the
    // screen and the POS app (EventSource cannot send a header).
    var tok = token();
    es = new EventSource("/v1/events" + (tok ? "?credential=" + encodeURIComponent(tok) : ""));
    es.onopen = function () { model.conn = true; render(); };
    es.onerror = function () {
      model.conn = false;
      render();
      // EventSource reconnects by itself, unless the server answered with
      // something that is not an event stream: then try again later.
      if (es.readyState === EventSource.CLOSED && !retryTimer) {
        es.close();
        retryTimer = setTimeout(connect, 3000);
      }
    };
    TYPES.forEach(function (type) {
      es.addEventListener(type, function (m) { handle(type, m.data); tell(type, m.data); });
    });
    // The top-up's own event is topup.js's alone.
    es.addEventListener("topup", function (m) { tell("topup", m.data); });
    es.onmessage = function (m) { handle(null, m.data); };
  }

  // The status once at start, in case the event stream is slow to come up.
  function fetchStatus() {
    if (typeof fetch === "undefined") return;
    fetch("/v1/status", { cache: "no-store" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (st) {
      if (st && !model.gotHello) { onStatus(st); render(); }
    }).catch(function () {});
  }

  // ---------- print ----------

  function busy(p) {
    return p.phase === "printing" || p.phase === "queued" || p.phase === "slow" || p.phase === "printed";
  }

  function authHeaders() {
    var headers = { "Content-Type": "application/json" };
    var tok = token();
    if (tok) headers.Authorization = "Bearer " + tok;
    return headers;
  }

  // requestReceipt asks for a receipt and follows it in slot(): the balance
  // slip's or the invoice slip's. slot() is null once the screen moved on
  // (another tap, the invoice closed): the answer is then dropped. on409 is
  // what a 409 means for this slip.
  function requestReceipt(slot, body, on409) {
    var p = slot();
    if (!p || busy(p)) return;
    clearPrint(p);
    p.phase = "printing";
    p.id = 0;
    p.err = "";
    render();
    fetch("/v1/receipts", {
      method: "POST",
      headers: authHeaders(),
      body: JSON.stringify(body),
      cache: "no-store"
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j || {} }; });
    }).then(function (res) {
      if (slot() !== p) return;
      if (res.status === 202 || res.status === 200 || res.status === 201) {
        var id = res.body.id;
        p.id = id;
        p.phase = "queued";
        setReceiptState(p, receiptsSeen[id] || res.body.state || "queued");
        if (p.phase === "queued") {
          p.timer = setTimeout(function () {
            p.timer = 0;
            if (p.phase === "queued") { p.phase = "slow"; render(); }
          }, PRINT_SLOW_MS);
        }
      } else {
        p.phase = "error";
        p.err =
          res.status === 409 ? on409 :
          res.status === 503 ? "printNoPrinter" :
          (res.status === 401 || res.status === 403) ? "printNotAllowed" : "printFailed";
      }
      render();
    }, function () {
      if (slot() !== p) return;
      p.phase = "error";
      p.err = "printNoConnection";
      render();
    });
  }

  function printReceipt() {
    var tapAtPress = model.tap;
    requestReceipt(function () { return model.tap === tapAtPress ? model.print : null; }, { kind: "balance" }, "printNoCard");
  }

  function printInvoice() {
    var inv = model.invoice;
    if (inv.phase !== "shown") return;
    requestReceipt(function () { return model.invoice === inv ? inv.print : null; }, { kind: "invoice", order: inv.order }, "invoiceAgain");
  }

  // openInvoice shows the invoice code of the top-up at index i of this
  // tap's applied ones (the last when i is not given), which the daemon
  // makes (and refuses for an order it did not load).
  function openInvoice(i) {
    var loads = appliedLoads(model.tap);
    if (!loads.length || !conf.invoice) return;
    i = typeof i === "number" ? i % loads.length : loads.length - 1;
    closeInvoice();
    var inv = model.invoice;
    inv.index = i;
    inv.order = String(loads[i].credit_id || "");
    inv.phase = "loading";
    render();
    fetch("/v1/invoices/" + encodeURIComponent(inv.order), { cache: "no-store" }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, body: j || {} }; });
    }).then(function (res) {
      if (model.invoice !== inv) return;
      var qr = res.body && res.body.qr;
      // Only the daemon's own SVG picture goes into the image.
      if (res.ok && typeof qr === "string" && qr.indexOf("data:image/svg+xml;base64,") === 0) {
        inv.data = res.body;
        inv.phase = "shown";
      } else {
        inv.phase = "error";
      }
      render();
    }, function () {
      if (model.invoice !== inv) return;
      inv.phase = "error";
      render();
    });
  }

  // ---------- rendering ----------

  function hasCardReader() {
    var st = model.status;
    if (!st) return true; // not known yet: say nothing
    if (st.pcscd === false) return false;
    if (st.readers === undefined) return true; // a status without the list
    var rs = st.readers || []; // null: none
    for (var i = 0; i < rs.length; i++) if (!rs[i].role || rs[i].role === "card") return true;
    return false;
  }

  function setText(id, text) {
    var el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  function setLines(el, lines) {
    el.textContent = "";
    lines.forEach(function (s) {
      var d = document.createElement("div");
      d.className = "line";
      d.textContent = s;
      el.appendChild(d);
    });
    el.hidden = lines.length === 0;
  }

  // shownBalance picks the balance to show: after the top-ups on a good
  // tap, else what was read. "" when unknown.
  function shownBalance() {
    var tap = model.tap, card = model.card;
    if (tap && tap.balance_after && (tap.outcome === "ok" || appliedLoads(tap).length > 0)) return tap.balance_after;
    if (card && card.balance) return card.balance;
    return "";
  }

  function render() {
    var t = T[model.lang];
    var other = T[model.lang === "zh" ? "en" : "zh"];
    var tap = model.tap;
    var card = model.card;
    var title = conf.title || t.title;

    document.documentElement.lang = model.lang === "zh" ? "zh-CN" : "en";
    body.setAttribute("data-state", model.state);
    body.setAttribute("data-tap", model.state === "idle" ? "" : (tap ? "done" : "pending"));
    body.setAttribute("data-conn", model.conn ? "up" : "down");
    body.setAttribute("data-lang", model.lang);
    body.setAttribute("data-card", card && card.number ? "yes" : "no");
    document.title = title;
    setText("brand", title);
    setText("merchant", conf.merchant);
    $("merchant").hidden = !conf.merchant;

    var fixed = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < fixed.length; i++) {
      var s = t[fixed[i].getAttribute("data-i18n")];
      if (s !== undefined && fixed[i].textContent !== s) fixed[i].textContent = s;
    }

    // Header and idle screen: both languages on the idle screen, the chosen one first.
    var toggle = $("lang-toggle");
    setText("lang-toggle", t.toggle);
    toggle.setAttribute("lang", model.lang === "zh" ? "en" : "zh-CN");
    setText("idle-primary", t.tap);
    setText("idle-secondary", other.tap);
    $("idle-secondary").setAttribute("lang", model.lang === "zh" ? "en" : "zh-CN");
    var note = $("reader-note");
    if (model.status && !hasCardReader()) {
      note.textContent = model.status.pcscd === false ? t.noService : t.noReader;
      note.hidden = false;
    } else {
      note.hidden = true;
    }

    // Card.
    setText("card-number", card && card.number ? card.number : "");
    var issuer = card ? (model.lang === "zh" ? card.issuer || card.issuer_en : card.issuer_en || card.issuer) || "" : "";
    setText("issuer", issuer);
    $("issuer-row").hidden = !issuer;
    setText("holder", card && card.holder ? card.holder : "");
    $("holder-row").hidden = !(card && card.holder);
    var validity = "";
    if (card && card.valid_from && card.valid_to) validity = fmt(t.validRange, { from: card.valid_from, to: card.valid_to });
    else if (card && card.valid_to) validity = fmt(t.validTo, { to: card.valid_to });
    setText("validity", validity);
    $("validity-row").hidden = !validity;
    var bal = shownBalance();
    setText("balance", bal || "—");
    $("balance-box").hidden = !bal && model.state === "error";

    setLines($("topup"), appliedLoads(tap).map(function (l) {
      return fmt(l.kind === "subsidy" ? t.subsidyApplied : t.topupApplied, { amount: l.amount });
    }));

    var leave = $("leave-note");
    leave.textContent = model.leave && model.state !== "idle" ? t.leave : "";
    leave.hidden = !leave.textContent;
    body.setAttribute("data-leave", leave.textContent ? "yes" : "no");

    renderTransactions(t);
    renderMessage(t);
    renderPrint(t);
    renderInvoice(t);
  }

  function renderTransactions(t) {
    var list = $("transactions");
    var card = model.card;
    var txs = (card && card.transactions) || [];
    list.textContent = "";
    txs.slice(0, 5).forEach(function (x) {
      var li = document.createElement("li");
      var kind = document.createElement("span");
      kind.className = "tx-kind";
      kind.textContent = t["kind_" + x.kind] || t.kind_other;
      var time = document.createElement("span");
      time.className = "tx-time";
      time.textContent = x.time || "";
      var amt = document.createElement("span");
      var a = x.amount || "";
      if (x.amount_fen > 0 && a.charAt(0) !== "+") a = "+" + a;
      amt.className = "tx-amount " + (x.amount_fen > 0 ? "plus" : "minus");
      amt.textContent = a;
      li.appendChild(kind);
      li.appendChild(amt);
      li.appendChild(time);
      list.appendChild(li);
    });
    var note = $("tx-note");
    if (txs.length === 0) {
      note.textContent = model.tap ? t.txNone : t.txLoading;
      note.hidden = false;
    } else {
      note.hidden = true;
    }
  }

  function renderMessage(t) {
    var tap = model.tap;
    var el = $("message");
    var lines = [];
    if (model.state === "error" && tap) {
      lines.push(t["out_" + tap.outcome] || t.out_other);
      el.setAttribute("data-outcome", tap.outcome || "");
      el.setAttribute("data-detail", tap.error || "");
    } else if (model.state === "card" && tap) {
      el.setAttribute("data-outcome", tap.outcome || "");
      el.setAttribute("data-detail", tap.error || "");
      if (tap.host_offline) {
        lines.push(t.hostOffline);
      } else {
        waitingLoads(tap).forEach(function (l) { lines.push(fmt(t.topupWaiting, { amount: l.amount })); });
      }
    } else {
      el.setAttribute("data-outcome", "");
      el.setAttribute("data-detail", "");
    }
    setLines(el, lines);
  }

  // printText is what a print state says, "" for nothing.
  function printText(t, p, pr) {
    switch (p.phase) {
      case "printing": return t.printing;
      case "queued": return pr.ready === false ? t.printerNotReady : t.printing;
      case "slow": return pr.ready === false ? t.printerNotReady : t.printQueued;
      case "printed": return t.printed;
      case "unknown": return t.printUnknown;
      case "error": return t[p.err] || t.printFailed;
    }
    return pr.ready === false ? t.printerNotReady : "";
  }

  function renderPrint(t) {
    var btn = $("print-button");
    var st = $("print-state");
    var pr = printerView();
    var show = model.state === "card" && model.tap && model.tap.outcome === "ok" && pr && pr.enabled;
    btn.hidden = !show;
    var p = model.print;
    btn.disabled = busy(p);
    var text = show ? printText(t, p, pr) : "";
    st.textContent = text;
    st.setAttribute("data-phase", show ? p.phase : "");
    st.hidden = !text;
  }

  function renderInvoice(t) {
    var inv = model.invoice;
    $("invoice-button").hidden = !(conf.invoice && model.state === "card" && appliedLoads(model.tap).length > 0);
    var view = $("invoice-view");
    view.hidden = !inv.phase;
    body.setAttribute("data-invoice", inv.phase);
    if (!inv.phase) return;
    var d = inv.data;
    var img = $("invoice-qr");
    if (d && img.getAttribute("src") !== d.qr) img.setAttribute("src", d.qr);
    img.hidden = !d;
    img.setAttribute("alt", t.invoiceTitle);
    setText("invoice-amount", d ? fmt(t.invoiceAmount, { amount: d.amount }) : "");
    setText("invoice-order", fmt(t.invoiceOrder, { order: inv.order }));
    var pr = printerView();
    var canPrint = inv.phase === "shown" && pr && pr.enabled;
    $("invoice-print").hidden = !canPrint;
    $("invoice-next").hidden = appliedLoads(model.tap).length < 2;
    $("invoice-print").disabled = busy(inv.print);
    var st = $("invoice-state");
    var text = inv.phase === "loading" ? t.invoiceLoading : inv.phase === "error" ? t.invoiceFailed : canPrint ? printText(t, inv.print, pr) : "";
    st.textContent = text;
    st.setAttribute("data-phase", inv.phase === "error" ? "error" : inv.print.phase);
  }

  // ---------- start ----------

  // setLang draws the page in lang ("zh" or "en") and tells the other
  // screens when it changed.
  function setLang(lang) {
    var l = lang === "en" ? "en" : "zh";
    var changed = l !== model.lang;
    model.lang = l;
    render();
    if (changed) document.dispatchEvent(new Event("kiosk-lang"));
  }

  // applyConfig takes /v1/kiosk/config's answer: strings as text only,
  // colours only when they are hex colours.
  function applyConfig(c) {
    if (!c || typeof c !== "object") return;
    conf.title = typeof c.title === "string" ? c.title : "";
    conf.merchant = typeof c.merchant === "string" ? c.merchant : "";
    conf.idle = typeof c.idle_seconds === "number" && c.idle_seconds >= 0 ? c.idle_seconds : 60;
    conf.lang = c.language === "en" ? "en" : "zh";
    conf.invoice = c.invoice === true;
    var colours = c.colors || {};
    ["primary", "background", "text"].forEach(function (k) {
      if (typeof colours[k] === "string" && HEX_COLOUR.test(colours[k])) document.documentElement.style.setProperty("--" + k, colours[k]);
    });
    armIdle();
    if (!langTouched) setLang(conf.lang);
    else render();
  }

  var langTouched = false;
  function fetchConfig() {
    if (typeof fetch === "undefined") return;
    fetch("/v1/kiosk/config", { cache: "no-store" }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (c) {
      if (c) applyConfig(c);
      else setTimeout(fetchConfig, 5000);
    }, function () { setTimeout(fetchConfig, 5000); });
  }

  $("lang-toggle").addEventListener("click", function () {
    langTouched = true;
    setLang(model.lang === "zh" ? "en" : "zh");
  });
  $("print-button").addEventListener("click", printReceipt);
  $("invoice-button").addEventListener("click", function () { openInvoice(); });
  // Several top-ups on one tap: each its own order and invoice.
  $("invoice-next").addEventListener("click", function () {
    var n = appliedLoads(model.tap).length;
    openInvoice((model.invoice.index + n - 1) % n);
  });
  $("invoice-print").addEventListener("click", printInvoice);
  $("invoice-close").addEventListener("click", function () { closeInvoice(); render(); });
  // Any touch is someone still there.
  document.addEventListener("pointerdown", armIdle);
  document.addEventListener("keydown", armIdle);
  // Pressed feedback on buttons, for touch: set on pointerdown, cleared on
  // every way a press can end.
  function pressed(on) {
    return function (e) {
      var b = e.target && e.target.closest ? e.target.closest("button") : null;
      if (on && b) b.classList.add("pressed");
      if (!on) {
        var all = document.querySelectorAll("button.pressed");
        for (var i = 0; i < all.length; i++) all[i].classList.remove("pressed");
      }
    };
  }
  document.addEventListener("pointerdown", pressed(true));
  ["pointerup", "pointercancel", "pointerleave", "touchend", "touchcancel"].forEach(function (type) {
    document.addEventListener(type, pressed(false));
  });
  // A kiosk has no use for the long-press menu.
  document.addEventListener("contextmenu", function (e) { e.preventDefault(); });

  render();
  armIdle();
  fetchConfig();
  connect();
  fetchStatus();
})();
