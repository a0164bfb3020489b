// Company Billing and Settings → Billing: Stripe.js's card element and confirmCardSetup.
// The card goes from the browser to Stripe; the form then tells our server only "done", and the
// server asks Stripe what really happened.
(function () {
  "use strict";
  var form = document.getElementById("card-setup-form");
  if (!form || typeof Stripe === "undefined") { return; }
  // Company Billing: the agency's connected account; Settings → Billing: the platform's own (no stripeAccount).
  var stripe = form.dataset.stripeAccount
    ? Stripe(form.dataset.publishableKey, { stripeAccount: form.dataset.stripeAccount })
    : Stripe(form.dataset.publishableKey);
  var card = stripe.elements().create("card");
  card.mount("#card-element");
  var errors = document.getElementById("card-errors");
  var button = document.getElementById("card-submit");
  var confirmed = false;

  form.addEventListener("submit", function (event) {
    if (confirmed) { return; }
    event.preventDefault();
    button.disabled = true;
    errors.textContent = "";
    stripe.confirmCardSetup(form.dataset.clientSecret, { payment_method: { card: card } }).then(function (result) {
      if (result.error) {
        errors.textContent = (result.error && result.error.message) || "Your card could not be saved.";
        button.disabled = false;
        return;
      }
      confirmed = true;
      form.submit();
    });
  });
})();
