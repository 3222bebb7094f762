import { defineConfig } from "vite";

// The UI is embedded in the causeway binary and served under a strict CSP (no inline
// script): no inline module-preload polyfill, plain hashed assets. `npm run dev` proxies the
// API to a real `causeway server --listen 127.0.0.1:8080` over an ingested store (ui/README.md).
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
