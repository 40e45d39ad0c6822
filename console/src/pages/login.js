// The login page of `serve --require-auth`: a token (from `hourglass user add`) checked against
// the server before it is kept, in sessionStorage only (gone when the tab closes).
import { checkToken, setToken } from "../api.js";
import { h } from "../dom.js";

export const loginPage = {
  id: "login",
  title: "Log in",
  mount(el, { message, onLogin }) {
    const input = h("input", {
      id: "login-token",
      type: "password",
      autocomplete: "off",
      placeholder: "hgt_…",
      size: 48,
    });
    const error = h("p", { id: "login-error", class: "error", role: "alert" }, message || "");
    const submit = h("button", { id: "login-submit", type: "submit" }, "Log in");
    const form = h(
      "form",
      { id: "login-form", class: "card login" },
      h("h2", {}, "Log in to Hourglass"),
      h(
        "p",
        {},
        "This server requires a token (the token printed by ",
        h("code", {}, "hourglass user add"),
        "). It is kept for this browser tab only.",
      ),
      h("label", {}, "Token ", input),
      submit,
      error,
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const candidate = input.value.trim();
      if (!candidate) {
        error.textContent = "Enter a token.";
        return;
      }
      submit.disabled = true;
      error.textContent = "";
      const refused = await checkToken(candidate);
      submit.disabled = false;
      if (refused) {
        error.textContent = `Login refused: ${refused}`;
        input.select();
        return;
      }
      setToken(candidate);
      onLogin();
    });
    el.append(form);
    input.focus();
  },
};
