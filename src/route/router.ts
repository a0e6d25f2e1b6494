// Ordered routes: the first match wins, `continue: true` goes on to the following routes (fan-out);
// nothing that matches no route is dropped: the caller parks it with reason `no-route`.
import type { Document } from '@xmldom/xmldom';
import type { MatchConfig, RouteConfig } from '../config/schema';
import type { Facts } from '../envelope/envelope';
import { compileXPath, type Namespaces } from '../envelope/xpath';
import { customParameterFact, toAgs, toLeistung } from './keys';

export interface RouteInput {
  facts: Facts;
  /** The parsed message, built on first use (only XPath criteria need it). */
  document: () => Document;
}

/** One delivery the routing decided on. */
export interface RoutedTarget {
  target: string;
  route: string;
}

export interface RoutingDecision {
  /** Names of the routes that matched, in order. */
  routes: string[];
  /** Targets, each once (the first route that named it is recorded). */
  targets: RoutedTarget[];
}

type Predicate = (input: RouteInput) => boolean;

const glob = (pattern: string) => new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

const anyOf = (patterns: string[], value: unknown) => typeof value === 'string' && patterns.some((p) => (p.includes('*') ? glob(p).test(value) : p === value));

function compileMatch(match: MatchConfig, namespaces: Namespaces): Predicate[] {
  const predicates: Predicate[] = [];
  const fact = (name: string, values: string[] | undefined) => {
    if (values) predicates.push(({ facts }) => anyOf(values, facts[name]));
  };
  if (match.tenant) {
    const tenants = new Set(match.tenant.map((code) => toAgs(code)!));
    predicates.push(({ facts }) => {
      const ags = (typeof facts.ags === 'string' ? toAgs(facts.ags) : undefined) ?? (typeof facts.ars === 'string' ? toAgs(facts.ars) : undefined);
      return ags !== undefined && tenants.has(ags);
    });
  }
  fact('reader', match.reader);
  if (match.messageType) {
    const types = match.messageType;
    predicates.push(({ facts }) => anyOf(types, facts.messageType) || anyOf(types, facts.messageTypeName) || anyOf(types, facts.rootElement));
  }
  fact('rootElement', match.rootElement);
  fact('standard', match.standard);
  fact('version', match.version);
  if (match.leistung) {
    const keys = new Set(match.leistung.map(toLeistung));
    predicates.push(({ facts }) => typeof facts.leistung === 'string' && keys.has(toLeistung(facts.leistung)));
  }
  if (match.test !== undefined) {
    const test = match.test;
    predicates.push(({ facts }) => facts.test === test);
  }
  for (const [name, values] of Object.entries(match.facts ?? {})) fact(name, values);
  fact('formId', match.formId);
  for (const [key, values] of Object.entries(match.customParameters ?? {})) fact(customParameterFact(key), values);
  for (const expression of match.xpath ?? []) {
    const compiled = compileXPath(expression, namespaces);
    predicates.push(({ document, facts }) => compiled.boolean(document(), facts));
  }
  return predicates;
}

/** A compiled route table. */
export interface Router {
  decide(input: RouteInput): RoutingDecision;
  /** Whether any route needs the DOM (XPath criteria); otherwise routing works on facts alone. */
  readonly needsDocument: boolean;
}

/** Compiles routes once. Throws an Error naming `routes[i].match.xpath[j]` for a bad expression. */
export function compileRouter(routes: RouteConfig[], namespaces: Namespaces): Router {
  const compiled = routes.map((route, index) => {
    try {
      return { route, predicates: compileMatch(route.match, namespaces) };
    } catch (error) {
      throw new Error(`routes[${index}].match: ${(error as Error).message}`, { cause: error });
    }
  });
  return {
    needsDocument: routes.some((route) => route.match.xpath !== undefined),
    decide(input) {
      const decision: RoutingDecision = { routes: [], targets: [] };
      for (const { route, predicates } of compiled) {
        if (!predicates.every((predicate) => predicate(input))) continue;
        decision.routes.push(route.name);
        for (const target of route.deliver) {
          if (!decision.targets.some((t) => t.target === target)) decision.targets.push({ target, route: route.name });
        }
        if (!route.continue) break;
      }
      return decision;
    },
  };
}
