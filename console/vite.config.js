// Vite's configuration of the Hourglass console: the bundle is served by the binary under
// /console/ (index.html also at /), so asset URLs start with /console/. crates/hourglass-console's
// build.rs passes --outDir (inside Cargo's OUT_DIR); `npm run build` alone writes dist/.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    // No source maps in the binary; no inline <script> (the CSP forbids inline scripts).
    sourcemap: false,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
    // Everything under assets/ is named by its content hash: the binary serves those files as
    // immutable (crates/hourglass-console/build.rs, `hashed`).
    rollupOptions: {
      output: {
        entryFileNames: "assets/[name]-[hash].js",
        chunkFileNames: "assets/[name]-[hash].js",
        assetFileNames: "assets/[name]-[hash][extname]",
      },
    },
  },
  server: {
    // `npm run dev` against a local server: HOURGLASS_URL=http://127.0.0.1:8086 npm run dev
    proxy: Object.fromEntries(
      ["/api", "/metrics", "/health"].map((p) => [p, process.env.HOURGLASS_URL || "http://127.0.0.1:8086"]),
    ),
  },
});
