// The console's shell: the page registry, the navigation between pages (by URL hash: #/query,
// #/schema, #/status) and the login gate of `serve --require-auth`. A new page is one module
// exporting { id, title, mount(container) -> optional unmount } and one line in PAGES.
import "./style.css";
import { needsLogin, onUnauthorized, setToken, token } from "./api.js";
import { queryPage } from "./pages/query.js";
import { schemaPage } from "./pages/schema.js";
import { statusPage } from "./pages/status.js";
import { dashboardsPage } from "./pages/dashboards.js";
import { alertsPage } from "./pages/alerts.js";
import { loginPage } from "./pages/login.js";

/** The pages shown in the navigation, in order. */
export const PAGES = [queryPage, dashboardsPage, alertsPage, schemaPage, statusPage];

const page = document.getElementById("page");
const nav = document.getElementById("nav");
const logout = document.getElementById("logout");
let unmount = null;
let loginRequired = false;

function renderNav(active) {
  nav.replaceChildren(
    ...PAGES.map((p) => {
      const a = document.createElement("a");
      a.href = `#/${p.id}`;
      a.textContent = p.title;
      a.id = `nav-${p.id}`;
      if (p.id === active) a.className = "active";
      return a;
    }),
  );
}

function mount(p) {
  if (unmount) unmount();
  unmount = null;
  page.replaceChildren();
  page.dataset.page = p.id;
  const u = p.mount(page);
  if (typeof u === "function") unmount = u;
}

function showLogin(message) {
  loginRequired = true;
  nav.replaceChildren();
  logout.hidden = true;
  mount({
    id: "login",
    mount: (el) =>
      loginPage.mount(el, {
        message,
        onLogin: () => {
          loginRequired = false;
          route();
        },
      }),
  });
}

function route() {
  if (loginRequired) return;
  const id = (location.hash.match(/^#\/([\w-]+)/) || [])[1] || PAGES[0].id;
  const p = PAGES.find((x) => x.id === id) || PAGES[0];
  renderNav(p.id);
  logout.hidden = !token();
  mount(p);
}

logout.addEventListener("click", () => {
  setToken("");
  showLogin("Logged out.");
});
onUnauthorized((message) => {
  if (!loginRequired) showLogin(token() ? `Your token was refused: ${message}` : "");
});
window.addEventListener("hashchange", route);

(async () => {
  if (await needsLogin()) showLogin("");
  else route();
})();
