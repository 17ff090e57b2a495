// esbuild bundles CSS imports into widget.css; for the type checker they are side effects only.
declare module "*.css";
