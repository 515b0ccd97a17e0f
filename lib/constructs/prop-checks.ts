/**
 * Checks of construct props that several constructs share. They throw at synth, before anything is
 * deployed, naming the construct and the prop.
 */
import { FARGATE_SIZES } from '../config/schema';

/** `value` must be a whole number from `min` to `max`: otherwise `<where>: <name> must be a whole number between …`. */
export function requireWholeNumber(
  where: string,
  name: string,
  value: number,
  min: number,
  max: number,
): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new Error(`${where}: ${name} must be a whole number between ${min} and ${max}, got ${value}`);
}

/** A Fargate task size: `cpu` one Fargate offers, `memoryMiB` within its range and step. */
export function requireFargateSize(where: string, cpu: number, memoryMiB: number): void {
  const size = FARGATE_SIZES[cpu];
  if (!size)
    throw new Error(`${where}: cpu must be one of ${Object.keys(FARGATE_SIZES).join(', ')}, got ${cpu}`);
  if (memoryMiB < size.min || memoryMiB > size.max || memoryMiB % size.step !== 0)
    throw new Error(
      `${where}: memoryMiB must be ${size.min}–${size.max} in steps of ${size.step} for cpu ${cpu}, got ${memoryMiB}`,
    );
}
