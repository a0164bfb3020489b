// Company Billing: the bank asked the card holder to confirm a recharge. Stripe.js's confirmCardPayment does it on
// session with the PaymentIntent's client secret; the form then tells our server only "done", and the server asks
// Stripe what really happened before crediting anything.
(function () {
  "use strict";
  var form = document.getElementById("payment-confirm-form");
  if (!form || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(form.dataset.publishableKey, { stripeAccount: form.dataset.stripeAccount });
  var errors = document.getElementById("payment-errors");
  var button = document.getElementById("payment-confirm");
  var confirmed = false;

  form.addEventListener("submit", function (event) {
    if (confirmed) { return; }
    event.preventDefault();
    button.disabled = true;
    errors.textContent = "";
    stripe.confirmCardPayment(form.dataset.clientSecret).then(function (result) {
      if (result.error) {
        errors.textContent = (result.error && result.error.message) || "The payment was not confirmed.";
        button.disabled = false;
        return;
      }
      confirmed = true;
      form.submit();
    });
  });
})();
