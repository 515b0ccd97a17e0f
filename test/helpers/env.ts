/**
 * The Lambdas read their environment from `process.env` (core/aws/env.ts, Powertools Commons), when
 * their handler factory runs. `withEnv` sets the given variables (`undefined` removes one) for the
 * factory call only, and puts the previous values back.
 */
export function withEnv<T>(vars: Readonly<Record<string, string | undefined>>, fn: () => T): T {
  const saved = new Map<string, string | undefined>();
  for (const [name, value] of Object.entries(vars)) {
    saved.set(name, process.env[name]);
    if (value === undefined) Reflect.deleteProperty(process.env, name);
    else process.env[name] = value;
  }
  try {
    return fn();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
  }
}
