/** Stylesheets imported for their side effect; esbuild writes them out beside the bundle. */
declare module '*.css';
