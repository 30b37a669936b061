// Deliberate exceptions to checkov rules, recorded in the resources' metadata where checkov
// reads them, each with its reason (infra/check refuses a skip without one, or one that no
// longer matches a check).

import type { IConstruct } from 'constructs';

/** A deliberate exception to a checkov rule, with its reason (checkov reads both from the metadata). */
export interface Skip {
  readonly id: string;
  readonly comment: string;
}

/** Records checkov skips in a resource's metadata, where checkov reads them. */
export function skipCheckov(construct: IConstruct, ...skips: Skip[]): void {
  const resource = (construct.node.defaultChild ?? construct) as unknown as { addMetadata?: (key: string, value: unknown) => void; getMetadata?: (key: string) => unknown };
  if (typeof resource.addMetadata !== 'function' || typeof resource.getMetadata !== 'function') {
    throw new Error(`${construct.node.path} is not a CloudFormation resource`);
  }
  const existing = (resource.getMetadata('checkov') as { skip?: Skip[] } | undefined)?.skip ?? [];
  resource.addMetadata('checkov', { skip: [...existing, ...skips] });
}

export const LOG_GROUP_KMS_SKIP: Skip = {
  id: 'CKV_AWS_158',
  comment: 'CloudWatch Logs encrypts at rest with its own keys; the app logs no secrets (the configuration is printed redacted).',
};
