// Stripe.js on our card forms. With a card element (#card-element): confirmCardSetup saves a card (Company Billing on
// the agency's account, Settings → Billing on the platform's: no data-stripe-account). Without: confirmCardPayment
// confirms a payment the bank held (authentication_required). The card goes from the browser to Stripe; the form then
// tells our server only "done", and the server asks Stripe what really happened.
(function () {
  "use strict";
  var form = document.querySelector("form[data-client-secret]");
  if (!form || typeof Stripe === "undefined") { return; }
  var stripe = form.dataset.stripeAccount
    ? Stripe(form.dataset.publishableKey, { stripeAccount: form.dataset.stripeAccount })
    : Stripe(form.dataset.publishableKey);
  var card = null;
  if (document.getElementById("card-element")) {
    card = stripe.elements().create("card");
    card.mount("#card-element");
  }
  var errors = form.querySelector("[role=alert]");
  var button = form.querySelector("button[type=submit]");
  var confirmed = false;

  form.addEventListener("submit", function (event) {
    if (confirmed) { return; }
    event.preventDefault();
    button.disabled = true;
    errors.textContent = "";
    var confirming = card
      ? stripe.confirmCardSetup(form.dataset.clientSecret, { payment_method: { card: card } })
      : stripe.confirmCardPayment(form.dataset.clientSecret);
    confirming.then(function (result) {
      if (result.error) {
        errors.textContent = (result.error && result.error.message) || form.dataset.failure;
        button.disabled = false;
        return;
      }
      confirmed = true;
      form.submit();
    });
  });
})();
