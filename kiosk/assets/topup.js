// cardd kiosk screen: the top-up paid by phone (kiosk.topup.enabled).
//
// With a card read on the reader the page shows a "充值 / Top up" button.
// It opens, over the card view: the amount screen (preset buttons and a
// keypad; amounts are whole fen throughout, yuan text is parsed to fen as
// text, never through a float), the payment screen (the QR code of the
// host's order, the amount, a countdown, cancel), and one result screen
// in plain words. The daemon writes the money onto the card still on the
// reader once the order is paid; the page learns it from the "topup"
// event and from GET /v1/topup/{id}, which it asks every 2 s (the daemon
// asks the host at most once per kiosk.topup.poll whatever the page does).
//
// It hears the daemon's events through app.js ("kiosk-event" on document)
// and follows the page's language (document.documentElement.lang, and the
// "kiosk-lang" event). Hooks for browser tests: #topup-button,
// #topup-overlay[data-screen] (amount | qr | result), .topup-preset
// [data-fen], #topup-keypad button[data-key], #topup-entry, #topup-confirm,
// #topup-qr, #topup-countdown, #topup-cancel, #topup-result[data-result]
// (written | card_left | waits | closed | unreachable | refused),
// #topup-balance, #topup-done.
(function () {
  "use strict";

  var POLL_MS = 2000;
  var RESULT_MS = 60000; // a result screen closes by itself after this
  var MAX_DIGITS = 7; // yuan digits before the point: 9,999,999.99 at most

  var T = {
    zh: {
      button: "充值",
      amountTitle: "选择充值金额",
      amountHint: "单笔最多 {max} 元",
      entryEmpty: "或输入金额",
      unit: "元",
      overMax: "超过可充值上限 {max} 元",
      confirm: "确认充值",
      back: "返回",
      creating: "正在生成支付二维码…",
      qrTitle: "请用手机扫码支付",
      qrAmount: "充值金额 {amount} 元",
      keepCard: "支付完成前请勿移开卡片",
      cardGone: "卡片已移开：支付后，金额将在您下次在任一终端刷卡时写入卡内",
      countdown: "剩余 {time}",
      noAnswer: "网络不稳定，正在重试…",
      cancel: "取消支付",
      writing: "已支付，正在写入卡内，请勿移开卡片…",
      written: "充值成功",
      writtenText: "{amount} 元已写入卡内",
      newBalance: "当前余额 {balance} 元",
      cardLeft: "已支付，卡片已移开",
      cardLeftText: "{amount} 元将在您下次刷卡时写入卡内（任一终端均可）",
      waits: "已支付，暂未写入卡内",
      waitsText: "{amount} 元已保存，将在您下次刷卡时写入卡内（任一终端均可）",
      closed: "订单已关闭",
      closedText: "未扣款。如需充值请重新选择金额",
      unreachable: "暂时无法充值",
      unreachableText: "网络不通，未扣款。请稍后再试",
      refused: "无法充值",
      noCard: "请将卡片放在读卡区后再充值",
      overCap: "卡内余额加上充值金额将超过上限",
      denied: "此卡已冻结，请联系卡务中心",
      failed: "出现错误，未扣款。请稍后再试或联系工作人员",
      done: "完成"
    },
    en: {
      button: "Top up",
      amountTitle: "Choose an amount",
      amountHint: "Up to {max} CNY",
      entryEmpty: "or enter an amount",
      unit: "CNY",
      overMax: "More than the most you can top up ({max} CNY)",
      confirm: "Top up",
      back: "Back",
      creating: "Making the payment QR code…",
      qrTitle: "Scan with your phone to pay",
      qrAmount: "Top-up {amount} CNY",
      keepCard: "Keep the card on the reader until you have paid",
      cardGone: "Card removed: if you pay, the money is written to the card the next time you tap it, at any terminal",
      countdown: "{time} left",
      noAnswer: "Network unsteady, trying again…",
      cancel: "Cancel payment",
      writing: "Paid. Writing to your card, keep it on the reader…",
      written: "Top-up done",
      writtenText: "{amount} CNY is on your card",
      newBalance: "Balance now {balance} CNY",
      cardLeft: "Paid. The card was removed",
      cardLeftText: "{amount} CNY will be written to your card the next time you tap it, at any terminal",
      waits: "Paid, not on the card yet",
      waitsText: "{amount} CNY is kept for you and will be written to your card the next time you tap it, at any terminal",
      closed: "Order closed",
      closedText: "Nothing was charged. Choose an amount again to top up",
      unreachable: "Top-up not available now",
      unreachableText: "The network is down. Nothing was charged. Please try again later",
      refused: "Cannot top up",
      noCard: "Put your card on the reader, then top up",
      overCap: "The card would hold more than its limit",
      denied: "Card frozen. Please contact the card office",
      failed: "Something went wrong. Nothing was charged. Please try again later or ask staff",
      done: "Done"
    }
  };

  var st = {
    enabled: false, // GET /v1/topup answered 200
    card: false, // a card read whole is on the reader
    screen: "", // "" | amount | qr | result
    presets: [],
    maxFen: 0,
    entry: "", // the keypad's yuan text, "100.5"
    busy: false, // a request of the page is under way
    order: null, // the order as the daemon last told it
    result: "", // written | card_left | waits | closed | unreachable | refused
    reason: "", // key of T for refused
    left: 0, // seconds left on the payment screen
    noAnswer: false
  };
  var pollTimer = 0;
  var tickTimer = 0;
  var resultTimer = 0;

  function $(id) { return document.getElementById(id); }

  function lang() {
    return (document.documentElement.lang || "zh").toLowerCase().indexOf("en") === 0 ? "en" : "zh";
  }

  function t(key, args) {
    var s = T[lang()][key] || key;
    return s.replace(/\{(\w+)\}/g, function (m, k) {
      return args && args[k] !== undefined ? String(args[k]) : m;
    });
  }

  // yuan formats whole fen as yuan text, "100.00", with integers only.
  function yuan(fen) {
    var f = Math.floor(Math.abs(fen));
    var c = f % 100;
    return (fen < 0 ? "-" : "") + String((f - c) / 100) + "." + (c < 10 ? "0" : "") + String(c);
  }

  // fenOf parses yuan text ("100", "100.5", "0.05") to whole fen, as text:
  // digits before the point times 100 plus the digits after it, padded to
  // two. -1 for anything else.
  function fenOf(text) {
    var m = /^(\d{1,7})(?:\.(\d{0,2}))?$/.exec(text);
    if (!m) return -1;
    var cents = (m[2] || "") + "00";
    return parseInt(m[1], 10) * 100 + parseInt(cents.slice(0, 2), 10);
  }

  function token() {
    var m = document.querySelector('meta[name="cardd-token"]');
    var v = m ? m.getAttribute("content") || "" : "";
    return v === "{{" + "TOKEN}}" ? "" : v;
  }

  // api calls the local API with the page's credential; it resolves to
  // {status, body}, status 0 when the daemon could not be reached.
  function api(method, path, body) {
    var headers = {};
    var tok = token();
    if (tok) headers.Authorization = "Bearer " + tok;
    var init = { method: method, headers: headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j || {} }; });
    }, function () { return { status: 0, body: {} }; });
  }

  function stopTimers() {
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = 0; }
    if (tickTimer) { clearInterval(tickTimer); tickTimer = 0; }
    if (resultTimer) { clearTimeout(resultTimer); resultTimer = 0; }
  }

  function close() {
    stopTimers();
    st.screen = "";
    st.order = null;
    st.result = "";
    st.busy = false;
    render();
  }

  function showResult(result, reason) {
    stopTimers();
    st.screen = "result";
    st.result = result;
    st.reason = reason || "";
    st.busy = false;
    resultTimer = setTimeout(close, RESULT_MS);
    render();
  }

  // ---------- amount ----------

  function openAmount() {
    if (st.busy) return;
    st.busy = true;
    render();
    api("GET", "/v1/topup").then(function (r) {
      st.busy = false;
      if (r.status !== 200) {
        showResult(r.status === 0 ? "unreachable" : "refused", "failed");
        return;
      }
      if (!r.body.card) {
        showResult("refused", "noCard");
        return;
      }
      st.presets = r.body.presets || [];
      st.maxFen = r.body.max_fen || 0;
      st.entry = "";
      st.screen = "amount";
      render();
    });
  }

  function key(k) {
    var e = st.entry;
    if (k === "back") e = e.slice(0, -1);
    else if (k === ".") { if (e.indexOf(".") < 0) e = (e || "0") + "."; }
    else if (/^\d$/.test(k)) {
      var dot = e.indexOf(".");
      if (dot >= 0 && e.length - dot > 2) return; // two decimals at most
      if (dot < 0 && e.replace(/^0+/, "").length >= MAX_DIGITS) return;
      e = e === "0" ? k : e + k;
    }
    st.entry = e;
    render();
  }

  function entryFen() {
    return st.entry === "" ? -1 : fenOf(st.entry);
  }

  // ---------- order ----------

  function pay(fen) {
    if (st.busy || !(fen > 0 && fen <= st.maxFen)) return;
    st.busy = true;
    st.screen = "qr";
    st.order = null;
    render();
    var press = "p" + Date.now().toString(36) + Math.floor(Math.random() * 1e9).toString(36);
    api("POST", "/v1/topup", { amount_fen: fen, key: press }).then(function (r) {
      st.busy = false;
      if (st.screen !== "qr") return; // closed meanwhile
      if (r.status === 201) {
        onOrder(r.body);
        return;
      }
      var msg = (r.body && r.body.error) || "";
      if (r.status === 0 || r.status === 503) showResult("unreachable");
      else if (/no card/.test(msg)) showResult("refused", "noCard");
      else if (/deny list/.test(msg)) showResult("refused", "denied");
      else if (/balance_cap|over its cap|its cap/.test(msg)) showResult("refused", "overCap");
      else showResult("refused", "failed");
    });
  }

  // onOrder takes the daemon's word about the order and moves the screens.
  function onOrder(o) {
    if (!o || !o.id) return;
    if (st.order && st.order.id !== o.id) return; // another order's
    var qr = st.order && st.order.qr_svg;
    st.order = o;
    if (!o.qr_svg && qr) st.order.qr_svg = qr; // kept for the screen while it changes
    st.noAnswer = !!o.host_unreachable;
    if (o.state === "closed") { showResult("closed"); return; }
    if (o.state === "paid") {
      if (o.load && o.load !== "writing") { showResult(o.load); return; }
      st.screen = "qr";
    } else {
      st.left = o.seconds_left || 0;
      if (!tickTimer) tickTimer = setInterval(tick, 1000);
    }
    schedulePoll();
    render();
  }

  function schedulePoll() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function poll() {
    pollTimer = 0;
    var o = st.order;
    if (!o || st.screen !== "qr") return;
    api("GET", "/v1/topup/" + encodeURIComponent(o.id)).then(function (r) {
      if (!st.order || st.order.id !== o.id || st.screen !== "qr") return;
      if (r.status === 200) {
        onOrder(r.body);
      } else {
        st.noAnswer = true;
        schedulePoll();
        render();
      }
    });
  }

  function tick() {
    if (!st.order || st.order.state !== "unpaid") return;
    st.left = Math.max(st.left - 1, 0);
    if (st.left === 0) cancel();
    render();
  }

  function cancel() {
    var o = st.order;
    if (!o) { close(); return; }
    if (st.busy) return;
    st.busy = true;
    render();
    api("POST", "/v1/topup/" + encodeURIComponent(o.id) + "/cancel").then(function (r) {
      st.busy = false;
      if (r.status === 200) showResult("closed");
      else if (r.status === 409) poll(); // paid meanwhile: the money is the card's
      else {
        // Not closed now: the order closes by itself at its expiry, and
        // if it was paid the money waits for the card's next tap.
        showResult("closed");
      }
    });
  }

  // ---------- events ----------

  document.addEventListener("kiosk-event", function (e) {
    var d = e.detail || {};
    var ev = d.event || {};
    switch (d.type) {
      case "card.present":
        st.card = false;
        break;
      case "card.balance":
        break;
      case "card.tap":
        st.card = !!(ev.tap && ev.tap.outcome === "ok" && ev.card);
        if (st.card && !st.enabled) checkEnabled(); // the daemon was away at start
        break;
      case "card.removed":
        st.card = false;
        if (st.screen === "amount") close();
        break;
      case "topup":
        if (ev.topup && st.order && ev.topup.id === st.order.id) onOrder(ev.topup);
        return;
      default:
        return;
    }
    render();
  });

  document.addEventListener("kiosk-lang", render);
  if (typeof MutationObserver !== "undefined") {
    new MutationObserver(render).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  }

  // ---------- rendering ----------

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, attrs[k]);
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function button(id, cls, text, onClick, disabled) {
    var b = el("button", { type: "button", class: cls });
    if (id) { b.id = id; b.setAttribute("data-testid", id); }
    b.textContent = text;
    b.disabled = !!disabled;
    b.addEventListener("click", onClick);
    return b;
  }

  function renderButton() {
    var b = $("topup-button");
    if (!b) {
      b = button("topup-button", "topup-open", "", openAmount);
      var actions = $("actions") || $("topup-root");
      actions.insertBefore(b, actions.firstChild);
    }
    var show = st.enabled && st.card && st.screen === "" && document.body.getAttribute("data-state") === "card";
    b.hidden = !show;
    b.disabled = st.busy;
    b.textContent = t("button");
  }

  function renderAmount(box) {
    box.appendChild(el("h1", {}, t("amountTitle")));
    box.appendChild(el("p", { class: "topup-hint" }, t("amountHint", { max: yuan(st.maxFen) })));
    var grid = el("div", { class: "topup-amount" });
    var presets = el("div", { class: "topup-presets" });
    st.presets.forEach(function (fen) {
      var b = button("", "topup-preset", yuan(fen), function () { pay(fen); }, fen > st.maxFen || st.busy);
      b.setAttribute("data-fen", String(fen));
      presets.appendChild(b);
    });
    grid.appendChild(presets);
    var pad = el("div", { class: "topup-pad" });
    var fen = entryFen();
    var entry = el("div", { id: "topup-entry", "data-testid": "topup-entry", class: st.entry ? "" : "empty" },
      st.entry ? st.entry + " " + t("unit") : t("entryEmpty"));
    pad.appendChild(entry);
    var keys = el("div", { id: "topup-keypad", class: "topup-keypad" });
    ["1", "2", "3", "4", "5", "6", "7", "8", "9", ".", "0", "back"].forEach(function (k) {
      var b = button("", "topup-key", k === "back" ? "⌫" : k, function () { key(k); });
      b.setAttribute("data-key", k);
      keys.appendChild(b);
    });
    pad.appendChild(keys);
    var note = el("p", { class: "topup-note" }, fen > st.maxFen ? t("overMax", { max: yuan(st.maxFen) }) : "");
    pad.appendChild(note);
    grid.appendChild(pad);
    box.appendChild(grid);
    var row = el("div", { class: "topup-actions" });
    row.appendChild(button("topup-back", "topup-secondary", t("back"), close));
    row.appendChild(button("topup-confirm", "topup-primary",
      t("confirm") + (fen > 0 && fen <= st.maxFen ? " " + yuan(fen) : ""), function () { pay(entryFen()); },
      !(fen > 0 && fen <= st.maxFen) || st.busy));
    box.appendChild(row);
  }

  function renderQR(box) {
    var o = st.order;
    if (!o) {
      box.appendChild(el("div", { class: "spinner", "aria-hidden": "true" }));
      box.appendChild(el("h1", {}, t("creating")));
      return;
    }
    box.appendChild(el("h1", {}, o.state === "paid" ? t("writing") : t("qrTitle")));
    box.appendChild(el("p", { id: "topup-amount", "data-testid": "topup-amount", class: "topup-big" }, t("qrAmount", { amount: o.amount })));
    var row = el("div", { class: "topup-qr-row" });
    if (o.state === "unpaid" && o.qr_svg) {
      var img = el("img", { id: "topup-qr", "data-testid": "topup-qr", alt: o.qr || "", "data-qr": o.qr || "",
        src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(o.qr_svg) });
      row.appendChild(img);
    } else {
      row.appendChild(el("div", { class: "spinner", "aria-hidden": "true" }));
    }
    var side = el("div", { class: "topup-side" });
    if (o.state === "unpaid") {
      var m = Math.floor(st.left / 60), s = st.left % 60;
      side.appendChild(el("p", { id: "topup-countdown", "data-testid": "topup-countdown", class: "topup-countdown" },
        t("countdown", { time: m + ":" + (s < 10 ? "0" : "") + s })));
    }
    side.appendChild(el("p", { class: st.card ? "topup-keep" : "topup-warn" }, st.card ? t("keepCard") : t("cardGone")));
    if (st.noAnswer) side.appendChild(el("p", { class: "topup-note" }, t("noAnswer")));
    if (o.state === "unpaid") side.appendChild(button("topup-cancel", "topup-secondary", t("cancel"), cancel, st.busy));
    row.appendChild(side);
    box.appendChild(row);
  }

  function renderResult(box) {
    var o = st.order || {};
    var amount = o.amount || "";
    var title, text = "", good = false;
    switch (st.result) {
      case "written": title = t("written"); text = t("writtenText", { amount: amount }); good = true; break;
      case "card_left": title = t("cardLeft"); text = t("cardLeftText", { amount: amount }); break;
      case "waits": title = t("waits"); text = t("waitsText", { amount: amount }); break;
      case "closed": title = t("closed"); text = t("closedText"); break;
      case "unreachable": title = t("unreachable"); text = t("unreachableText"); break;
      default: title = t("refused"); text = t(st.reason || "failed");
    }
    var r = el("div", { id: "topup-result", "data-testid": "topup-result", "data-result": st.result, class: good ? "good" : "" });
    r.appendChild(el("h1", {}, title));
    r.appendChild(el("p", { class: "topup-big" }, text));
    if (st.result === "written" && o.balance) {
      r.appendChild(el("p", { id: "topup-balance", "data-testid": "topup-balance", class: "topup-balance" }, t("newBalance", { balance: o.balance })));
    }
    box.appendChild(r);
    box.appendChild(button("topup-done", "topup-primary", t("done"), close));
  }

  var drawn = ""; // what the overlay shows now, less the countdown

  function render() {
    renderButton();
    var ov = $("topup-overlay");
    if (!ov) {
      ov = el("section", { id: "topup-overlay", "data-testid": "topup-overlay", role: "dialog", "aria-modal": "true" });
      ($("topup-root") || document.body).appendChild(ov);
    }
    var o = st.order || {};
    var now = [st.screen, lang(), st.busy, st.card, st.noAnswer, st.entry, st.result, st.reason, st.maxFen,
      st.presets.join(","), o.id, o.state, o.load, o.balance].join("|");
    var cd = $("topup-countdown");
    if (now === drawn && cd) {
      // Only the countdown moved: the QR code is not drawn again.
      var m = Math.floor(st.left / 60), s = st.left % 60;
      cd.textContent = t("countdown", { time: m + ":" + (s < 10 ? "0" : "") + s });
      return;
    }
    drawn = now;
    ov.setAttribute("data-screen", st.screen);
    ov.hidden = st.screen === "";
    document.body.setAttribute("data-topup", st.screen);
    ov.textContent = "";
    if (st.screen === "") return;
    var box = el("div", { class: "topup-box" });
    if (st.screen === "amount") renderAmount(box);
    else if (st.screen === "qr") renderQR(box);
    else renderResult(box);
    ov.appendChild(box);
  }

  // checkEnabled asks whether the daemon offers the top-up (200) or not
  // (409: off, or not a kiosk).
  function checkEnabled() {
    api("GET", "/v1/topup").then(function (r) {
      st.enabled = r.status === 200;
      if (r.status === 200 && r.body.card) st.card = true;
      render();
    });
  }

  checkEnabled();
  render();
})();
