// Serves the operator's console: static files from `console/` at /console. The page holds no data; it
// calls the admin API with the operator's token, so everything it shows is behind the admin role.
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Router } from 'express';

/** The package root (where package.json is), from the sources (tsx) or the build (dist/src/...). */
function packageRoot(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'console'))) return dir;
  }
  throw new Error('console/ not found above ' + __dirname);
}

export function consolePages(): Router {
  const router = express.Router();
  const root = path.join(packageRoot(), 'console');
  router.use('/console', (_req, res, next) => {
    // No inline scripts or styles, nothing from elsewhere; not to be framed.
    res.set({
      'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-store',
    });
    next();
  }, express.static(root, { index: 'index.html', fallthrough: false }));
  router.get('/', (_req, res) => res.redirect('/console/'));
  return router;
}
