// Appended by our layer to localstripe's Stripe.js mock (dev/test only). localstripe's card element
// takes the number without spaces and a 2-digit year only, and breaks on an empty submit; real Stripe
// Elements accepts what people type ("4242 4242 4242 4242", "12 / 30" or "12 / 2030") and answers
// with sentences. This keeps localstripe's API calls and 3-D Secure modal and replaces the element.
(function () {
  "use strict";

  var FIELDS = [
    { name: "number", placeholder: "Card number", label: "Card number", mode: "numeric", autocomplete: "cc-number", width: "minmax(0, 1fr)" },
    { name: "expiry", placeholder: "MM / YY", label: "Expiration date (MM / YY)", mode: "numeric", autocomplete: "cc-exp", width: "5.6em" },
    { name: "cvc", placeholder: "CVC", label: "Security code (CVC)", mode: "numeric", autocomplete: "cc-csc", width: "3.8em" },
    { name: "postal_code", placeholder: "ZIP", label: "ZIP / postal code", mode: "text", autocomplete: "postal-code", width: "5.4em" }
  ];

  function digits(text) { return String(text || "").replace(/\D/g, ""); }

  function luhn(number) {
    var sum = 0;
    for (var i = 0; i < number.length; i++) {
      var d = parseInt(number.charAt(number.length - 1 - i), 10);
      if (i % 2 === 1) { d *= 2; if (d > 9) { d -= 9; } }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function error(code, message) {
    return { type: "validation_error", code: code, message: message };
  }

  // "12 / 30", "12/2030", "1230", "12 - 2030" -> {month, year (4 digits)} or an error.
  function parseExpiry(text) {
    var raw = String(text || "").trim();
    if (!raw) { return { error: error("incomplete_expiry", "Your card's expiration date is incomplete.") }; }
    var parts = raw.split(/\s*[\/\-.\s]\s*/).filter(Boolean);
    var month, year;
    if (parts.length === 2) {
      month = digits(parts[0]); year = digits(parts[1]);
    } else {
      var all = digits(raw);
      month = all.slice(0, 2); year = all.slice(2);
    }
    if (!month || (year.length !== 2 && year.length !== 4)) {
      return { error: error("incomplete_expiry", "Your card's expiration date is incomplete.") };
    }
    var m = parseInt(month, 10), y = parseInt(year, 10);
    if (year.length === 2) { y += 2000; }
    if (!(m >= 1 && m <= 12)) {
      return { error: error("invalid_expiry_month", "Your card's expiration month is invalid.") };
    }
    var now = new Date();
    if (y < now.getFullYear() || (y === now.getFullYear() && m < now.getMonth() + 1)) {
      return { error: error("invalid_expiry_year_past", "Your card's expiration date is in the past.") };
    }
    if (y > now.getFullYear() + 50) {
      return { error: error("invalid_expiry_year", "Your card's expiration year is invalid.") };
    }
    return { month: String(m), year: String(y) };
  }

  function validate(inputs) {
    var number = digits(inputs.number.value);
    if (/[^\d\s-]/.test(inputs.number.value) || (number.length >= 13 && !luhn(number))) {
      return { error: error("invalid_number", "Your card number is invalid.") };
    }
    if (number.length < 13 || number.length > 19) {
      return { error: error("incomplete_number", "Your card number is incomplete.") };
    }
    var expiry = parseExpiry(inputs.expiry.value);
    if (expiry.error) { return expiry; }
    var cvc = digits(inputs.cvc.value);
    if (cvc.length < 3 || cvc.length > 4 || cvc !== inputs.cvc.value.trim()) {
      return { error: error("incomplete_cvc", "Your card's security code is incomplete.") };
    }
    var postal = inputs.postal_code.value.trim();
    if (!postal) { return { error: error("incomplete_zip", "Your postal code is incomplete.") }; }
    return { card: { number: number, exp_month: expiry.month, exp_year: expiry.year, cvc: cvc }, postal_code: postal };
  }

  function formatNumber(input) {
    var number = digits(input.value).slice(0, 19);
    var formatted = number.replace(/(\d{4})(?=\d)/g, "$1 ");
    if (formatted !== input.value && /^[\d\s]*$/.test(input.value)) { input.value = formatted; }
  }

  Element.prototype.mount = function (domElement) {
    if (typeof domElement === "string") { domElement = document.querySelector(domElement); }
    if (!(domElement instanceof window.Element)) {
      throw new Error("Invalid DOM element. Make sure to call mount() with a valid DOM element or selector.");
    }
    if (this._domChildren.length) { return; }
    var self = this;
    var row = document.createElement("div");
    row.className = "localstripe-card";
    Object.assign(row.style, {
      display: "grid", gap: ".4em", alignItems: "center", width: "100%",
      gridTemplateColumns: FIELDS.map(function (f) { return f.width; }).join(" ")
    });
    this._inputs = {};
    FIELDS.forEach(function (field) {
      var input = document.createElement("input");
      input.type = "text";
      input.name = "localstripe-" + field.name;
      input.placeholder = field.placeholder;
      input.setAttribute("aria-label", field.label);
      input.setAttribute("autocomplete", field.autocomplete);
      input.setAttribute("inputmode", field.mode);
      Object.assign(input.style, { minWidth: "0", width: "100%", boxSizing: "border-box", font: "inherit",
                                   padding: ".5rem .45rem", border: "1px solid #dfe4ee", borderRadius: "6px" });
      input.addEventListener("input", function () {
        if (field.name === "number") { formatNumber(input); }
        self._changed();
      });
      self._inputs[field.name] = input;
      row.appendChild(input);
    });
    var hint = document.createElement("small");
    hint.textContent = "Local Stripe (development): test card 4242 4242 4242 4242, any future date, any CVC.";
    Object.assign(hint.style, { display: "block", color: "#5d6b82", marginTop: ".3em" });
    this._domChildren.push(row, hint);
    this._domChildren.forEach(function (child) { domElement.appendChild(child); });
  };

  Element.prototype._changed = function () {
    var result = validate(this._inputs);
    var empty = FIELDS.every(function (f) { return !this._inputs[f.name].value.trim(); }, this);
    this.value = result.error ? undefined : { card: result.card, postal_code: result.postal_code };
    var event = { elementType: "card", empty: empty, complete: !result.error, error: undefined };
    (this.listeners.change || []).forEach(function (handler) { handler(event); });
  };

  Element.prototype.focus = function () { if (this._inputs) { this._inputs.number.focus(); } };

  var localstripeFactory = Stripe;
  Stripe = function (apiKey, options) {
    var stripe = localstripeFactory(apiKey, options);
    var confirmCardSetup = stripe.confirmCardSetup;
    stripe.confirmCardSetup = async function (clientSecret, data) {
      var card = data && data.payment_method && data.payment_method.card;
      if (card instanceof Element) {
        if (!card._inputs) {
          return { error: error("incomplete_number", "Your card number is incomplete.") };
        }
        var result = validate(card._inputs);
        if (result.error) { return { error: result.error }; }
        card.value = { card: result.card, postal_code: result.postal_code };
      }
      var answer = await confirmCardSetup(clientSecret, data);
      if (answer.error && !/^[A-Z].*[.!]$/.test(String(answer.error.message || ""))) {
        // A network failure or a bare answer such as "Bad request": still a sentence for the person.
        answer.error = { type: "api_error", message: "Your card could not be saved. Please try again." };
      }
      return answer;
    };
    return stripe;
  };
})();
