/**
 * Which secrets and parameters are protected (`configuration` in cofre.config.ts): an event or a
 * listing for anything else is ignored, so the snapshot Lambda never reads what it was not given.
 */

/** The configured set. */
export interface ConfigTargets {
  /**
   * Secrets: full ARNs, partial ARNs (without the random `-AbCdEf` suffix), or either ending in `*`
   * (every secret whose name starts with what precedes it).
   */
  readonly secrets: readonly string[];
  /** SSM parameter paths: a path covers itself and everything below it (`/` covers every `/…` name). */
  readonly parameterPaths: readonly string[];
  /** Data class of every snapshot (its retention and `cofre:class` tag). @default general */
  readonly dataClass?: string | undefined;
}

const SECRET_ARN = /^(arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}):secret:(.+)$/;
const RANDOM_SUFFIX = /-[A-Za-z0-9]{6}$/;

/** The scope (`arn:…:<account>`) and name of a secret ARN, the random suffix removed. */
export function secretArnParts(arn: string): { scope: string; name: string } | undefined {
  const match = SECRET_ARN.exec(arn);
  if (!match) return undefined;
  return { scope: match[1]!, name: match[2]!.replace(RANDOM_SUFFIX, '') };
}

/** Whether `id` (a secret ARN as events carry it, or a secret name) is in the configured set. */
export function isTargetSecret(targets: ConfigTargets, id: string): boolean {
  const event = id.startsWith('arn:') ? secretArnParts(id) : { scope: undefined, name: id };
  if (!event) return false;
  return targets.secrets.some((entry) => {
    const wildcard = entry.endsWith('*');
    const text = wildcard ? entry.slice(0, -1) : entry;
    const match = SECRET_ARN.exec(text);
    const scope = match ? match[1]! : undefined;
    const written = match ? match[2]! : text;
    if (scope && event.scope && scope !== event.scope) return false;
    if (wildcard) return event.name.startsWith(written);
    // A configured ARN may be full (with the suffix) or partial: accept either reading.
    return event.name === written || event.name === written.replace(RANDOM_SUFFIX, '');
  });
}

/** Whether the parameter `name` is under a configured path. */
export function isTargetParameter(targets: ConfigTargets, name: string): boolean {
  return targets.parameterPaths.some((path) => {
    if (path === '/') return name.startsWith('/');
    const base = path.replace(/\/+$/, '');
    return name === base || name.startsWith(`${base}/`);
  });
}
