// Starts Wardline: loads the module wasm-bindgen generated, which fetches and instantiates
// wardline_bg.wasm; the wasm's start function then renders the app into #app. A file of its
// own rather than an inline script, so the page needs no 'unsafe-inline' in its CSP.
import init from "./wardline.js";

init().catch((error) => {
  console.error(error);
  const root = document.getElementById("app");
  if (root) {
    root.textContent = `Wardline could not start: ${error}`;
  }
});
