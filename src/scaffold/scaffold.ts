// `antragsrouter adapter new <name>`: copies the template adapter (src/scaffold/template: a working
// adapter, its conformance test and a README stub, itself type-checked, linted and tested with the
// project) into `<adaptersDir>/<name>/`, renaming it and rewriting its imports of src/ for the new place.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUILT_IN_NAMES } from '../deliver/registry';

const TEMPLATE_NAME = 'scaffold-template';
const NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** The template's source directory: beside this module when run from src/, else in the checkout's src/. */
export function templateDir(): string {
  const candidates = [path.join(__dirname, 'template'), path.resolve(__dirname, '../../../src/scaffold/template')];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'index.ts')));
  if (!found) throw new Error('the adapter template (src/scaffold/template) is missing: run this command in a source checkout of antragsrouter');
  return found;
}

/** Rewrites relative imports that leave the template directory so that they resolve from `targetDir`. */
function rewriteImports(source: string, fromDir: string, targetDir: string): string {
  return source.replace(/(from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g, (match, lead: string, specifier: string) => {
    const absolute = path.resolve(fromDir, specifier);
    if (path.dirname(absolute) === fromDir) return match;
    let relative = path.relative(targetDir, absolute).split(path.sep).join('/');
    if (!relative.startsWith('.')) relative = `./${relative}`;
    return `${lead}'${relative}'`;
  });
}

/** Creates `<adaptersDir>/<name>/` from the template; returns the files written. Refuses bad or taken names. */
export function scaffoldAdapter(name: string, adaptersDir: string): string[] {
  if (!NAME.test(name)) throw new Error(`adapter name "${name}": use lower-case letters, digits, "-" and "_", starting with a letter or digit`);
  if (BUILT_IN_NAMES.includes(name)) throw new Error(`adapter name "${name}" is built in`);
  const targetDir = path.resolve(adaptersDir, name);
  if (existsSync(targetDir)) throw new Error(`${targetDir} exists already`);
  const source = templateDir();
  const envName = name.toUpperCase().replace(/-/g, '_');
  mkdirSync(targetDir, { recursive: true });
  return readdirSync(source).filter((file) => /\.(ts|md)$/.test(file)).map((file) => {
    const text = rewriteImports(readFileSync(path.join(source, file), 'utf8'), source, targetDir)
      .replaceAll(TEMPLATE_NAME.toUpperCase().replace(/-/g, '_'), envName)
      .replaceAll(TEMPLATE_NAME, name);
    const written = path.join(targetDir, file.replace(TEMPLATE_NAME, name));
    writeFileSync(written, text, { flag: 'wx' });
    return written;
  });
}
