/**
 * Errors that carry the `cofre` exit code (DESIGN.md): 1 operational failure, 2 bad usage or bad
 * input (nothing was changed), 3 integrity check failed. Their messages are meant for a person at
 * 3 a.m.: what failed, which field or artifact, what was expected.
 */
export class CofreError extends Error {
  constructor(
    message: string,
    public readonly exitCode: 1 | 2 | 3,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad usage or bad input: exit 2, and nothing was changed. */
export class UsageError extends CofreError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 2, options);
  }
}

/**
 * Bad input in one named field, said in core's own words: `field` is the name of the option in the
 * engine's options object (`zstdLevel`, `kmsKeyArn`), and the message reads `zstdLevel: …`, which is
 * what a Lambda or the Fargate task reports. Each front end may name the field its own way: the CLI
 * prints `detail` after its flag (`--zstd-level: …`, cli/flags.ts).
 */
export class FieldError extends UsageError {
  constructor(
    /** The option's name in core's options object. */
    public readonly field: string,
    /** What was wrong and what was expected, without the field's name. */
    public readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: ${detail}`, options);
  }
}

/** An operation failed (database, network, storage): exit 1. */
export class OperationalError extends CofreError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 1, options);
  }
}

/** A backup does not match its manifest, or its hash chain is broken: exit 3. */
export class IntegrityError extends CofreError {
  constructor(
    message: string,
    /** One line per problem found. */
    public readonly problems: readonly string[] = [message],
    options?: ErrorOptions,
  ) {
    super(message, 3, options);
  }
}

/** The run was cancelled (SIGTERM / SIGINT, as Fargate sends on stop). */
export class CancelledError extends OperationalError {
  constructor(reason: string) {
    super(`cancelled: ${reason}; nothing was kept`);
  }
}

/** The message of any thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
