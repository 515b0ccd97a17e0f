/**
 * The table of contents of a pg_dump custom-format archive (`pg_restore -l --verbose`): every
 * entry with its dump id and the ids it depends on, so that a one-table restore can select the
 * table and everything that depends on it, and write that selection as a `pg_restore -L` list.
 */
import type { Client } from 'pg';
import { quoteIdentifier } from './connection';
import { OperationalError } from '../util/errors';
import { runTool } from './process';

export interface TocEntry {
  readonly id: number;
  /** pg_dump's description: TABLE, FK CONSTRAINT, SEQUENCE SET, … */
  readonly type: string;
  /** `-` when the entry has no schema. */
  readonly schema: string;
  /** The tag: the object's name (`table constraint` for constraints, `TABLE t` for comments). */
  readonly tag: string;
  /** The entry's line as `pg_restore -l` prints it (what a `-L` list file holds). */
  readonly line: string;
  readonly deps: readonly number[];
}

/** pg_dump's entry descriptions, longest first so that `TABLE DATA` is not read as `TABLE`. */
const TYPES = [
  'PUBLICATION TABLES IN SCHEMA',
  'MATERIALIZED VIEW DATA',
  'TEXT SEARCH CONFIGURATION',
  'TEXT SEARCH DICTIONARY',
  'FOREIGN DATA WRAPPER',
  'TEXT SEARCH TEMPLATE',
  'TEXT SEARCH PARSER',
  'PROCEDURAL LANGUAGE',
  'DATABASE PROPERTIES',
  'SEQUENCE OWNED BY',
  'PUBLICATION TABLE',
  'MATERIALIZED VIEW',
  'OPERATOR FAMILY',
  'OPERATOR CLASS',
  'SECURITY LABEL',
  'FOREIGN SERVER',
  'CHECK CONSTRAINT',
  'BLOB METADATA',
  'EVENT TRIGGER',
  'FOREIGN TABLE',
  'ACCESS METHOD',
  'FK CONSTRAINT',
  'LARGE OBJECT',
  'USER MAPPING',
  'SEQUENCE SET',
  'ROW SECURITY',
  'TABLE ATTACH',
  'INDEX ATTACH',
  'DEFAULT ACL',
  'TABLE DATA',
  'SHELL TYPE',
].sort((a, b) => b.length - a.length);

/** Parses `pg_restore -l --verbose` output. */
export function parseToc(text: string): TocEntry[] {
  const out: { id: number; type: string; schema: string; tag: string; line: string; deps: number[] }[] = [];
  for (const raw of text.split('\n')) {
    const dep = /^;\s*depends on:\s*([\d ]+)$/.exec(raw);
    if (dep && out.length) {
      out[out.length - 1]!.deps.push(...dep[1]!.trim().split(/\s+/).map(Number));
      continue;
    }
    const m = /^(\d+); \d+ \d+ (.*)$/.exec(raw);
    if (!m) continue;
    const rest = m[2]!;
    const type = TYPES.find((t) => rest.startsWith(`${t} `)) ?? rest.split(' ')[0]!;
    const after = rest.slice(type.length + 1);
    const space = after.indexOf(' ');
    const schema = space === -1 ? after : after.slice(0, space);
    // The tag, less the owner (the last word; empty for entries without one).
    const tagAndOwner = space === -1 ? '' : after.slice(space + 1);
    const lastSpace = tagAndOwner.lastIndexOf(' ');
    const tag = lastSpace === -1 ? tagAndOwner : tagAndOwner.slice(0, lastSpace);
    out.push({ id: Number(m[1]), type, schema, tag, line: raw, deps: [] });
  }
  return out;
}

/** Reads an archive's table of contents with its dependencies. */
export async function readToc(file: string): Promise<TocEntry[]> {
  return parseToc(await runTool('pg_restore', ['--list', '--verbose', file]));
}

/** `TYPE schema tag`, as an operator reads it in `pg_restore -l`. */
export function describeEntry(e: Pick<TocEntry, 'type' | 'schema' | 'tag'>): string {
  return `${e.type} ${e.schema === '-' ? '' : `${e.schema} `}${e.tag}`;
}

/**
 * The table's entry and every entry that depends on it, directly or through another selected
 * entry: its data, owned and identity sequences with their values, defaults, constraints, indexes,
 * triggers, rules, policies, row security, comments, grants, the views built on it and the foreign
 * keys of other tables that point into it. In the archive's order (a valid restore order).
 */
export function tableClosure(toc: readonly TocEntry[], schema: string, name: string): TocEntry[] {
  const table = toc.find(
    (e) =>
      (e.type === 'TABLE' || e.type === 'FOREIGN TABLE') && e.line.includes(` ${e.type} ${schema} ${name} `),
  );
  if (!table) throw new OperationalError(`the dump's table of contents has no table ${schema}.${name}`);
  const selected = new Set([table.id]);
  for (let grew = true; grew;) {
    grew = false;
    for (const e of toc)
      if (!selected.has(e.id) && e.deps.some((d) => selected.has(d))) {
        selected.add(e.id);
        grew = true;
      }
  }
  return toc.filter((e) => selected.has(e.id));
}

const RELATION_TYPES = new Set(['TABLE', 'VIEW', 'MATERIALIZED VIEW', 'SEQUENCE', 'FOREIGN TABLE', 'INDEX']);

function q(name: string): string {
  return quoteIdentifier('postgres', name);
}

/**
 * The entries outside `selected` that selected entries depend on and that the live database no
 * longer has (a trigger function, a referenced table, a type, a schema): a restore of `selected`
 * would fail on them. Entry kinds that cannot be looked up by name are left to the restore's
 * transaction.
 */
export async function missingDependencies(
  client: Client,
  toc: readonly TocEntry[],
  selected: readonly TocEntry[],
): Promise<TocEntry[]> {
  const byId = new Map(toc.map((e) => [e.id, e]));
  const inside = new Set(selected.map((e) => e.id));
  const outside = new Map<number, TocEntry>();
  for (const e of selected)
    for (const d of e.deps) if (!inside.has(d) && byId.has(d)) outside.set(d, byId.get(d)!);
  const missing: TocEntry[] = [];
  for (const e of outside.values()) {
    let exists: boolean | undefined;
    const one = async (sql: string, params: unknown[]) =>
      (await client.query<{ ok: boolean }>(sql, params)).rows[0]?.ok === true;
    if (RELATION_TYPES.has(e.type))
      exists = await one('SELECT to_regclass($1) IS NOT NULL AS ok', [`${q(e.schema)}.${q(e.tag)}`]);
    else if (e.type === 'FUNCTION' || e.type === 'PROCEDURE' || e.type === 'AGGREGATE') {
      const paren = e.tag.indexOf('(');
      exists = await one('SELECT to_regprocedure($1) IS NOT NULL AS ok', [
        `${q(e.schema)}.${q(e.tag.slice(0, paren))}${e.tag.slice(paren)}`,
      ]);
    } else if (e.type === 'TYPE' || e.type === 'DOMAIN')
      exists = await one('SELECT to_regtype($1) IS NOT NULL AS ok', [`${q(e.schema)}.${q(e.tag)}`]);
    else if (e.type === 'SCHEMA')
      exists = await one('SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS ok', [e.tag]);
    else if (e.type === 'EXTENSION')
      exists = await one('SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1) AS ok', [e.tag]);
    else if (e.type === 'CONSTRAINT' || e.type === 'FK CONSTRAINT' || e.type === 'CHECK CONSTRAINT')
      exists = await one(
        `SELECT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
           JOIN pg_namespace n ON n.oid = r.relnamespace
           WHERE n.nspname = $1 AND r.relname || ' ' || c.conname = $2) AS ok`,
        [e.schema, e.tag],
      );
    if (exists === false) missing.push(e);
  }
  return missing;
}

/** The roles that selected entries are owned by and the target does not have. */
export async function missingOwners(client: Client, selected: readonly TocEntry[]): Promise<string[]> {
  const owners = [
    ...new Set(selected.map((e) => e.line.slice(e.line.lastIndexOf(' ') + 1)).filter((o) => o !== '')),
  ];
  if (owners.length === 0) return [];
  const { rows } = await client.query<{ rolname: string }>(
    'SELECT rolname FROM pg_roles WHERE rolname = ANY($1)',
    [owners],
  );
  const have = new Set(rows.map((r) => r.rolname));
  return owners.filter((o) => !have.has(o));
}
