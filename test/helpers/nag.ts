import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/** Every acknowledgement recorded in the tree under `root`: where, which rule, and the reason. */
export function listAcknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  const found: { path: string; id: string; reason: string }[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY || !entry.data) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) {
        found.push({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason: String(reason),
        });
      }
    }
  }
  return found;
}
