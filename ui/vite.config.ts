import { defineConfig } from "vite";

// The UI is embedded in the causeway binary and served under a strict CSP (no inline
// script): no inline module-preload polyfill, plain hashed assets. `npm run dev` proxies the
// API to a demo server (cargo run -p causeway-server --example demo_server).
export default defineConfig({
  build: {
    outDir: "dist",
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080", "/metrics": "http://127.0.0.1:8080" },
  },
});
