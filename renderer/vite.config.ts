import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs: the same build is served by the host over HTTP and loaded by Electron.
  base: './',
  plugins: [vue()],
  resolve: {
    alias: { '@shared': fileURLToPath(new URL('../shared', import.meta.url)) },
  },
  build: {
    outDir: '../dist/renderer',
    emptyOutDir: true,
    // noVNC uses top-level await (core/util/browser.js).
    target: 'es2022',
  },
  optimizeDeps: { esbuildOptions: { target: 'es2022' } },
});
