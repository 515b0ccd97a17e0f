/** Every field of the configuration schema has an effect: the other half of the cases (every-field.test.ts). */
import { describe } from 'vitest';
import { changesWhatIsDeployed } from './every-field-cases';

describe('every configuration field (second half)', () => {
  changesWhatIsDeployed(1, 2);
});
