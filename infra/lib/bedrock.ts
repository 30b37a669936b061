// The Bedrock ARNs the task role may use, built from model ids alone, so that the role names
// each model and never `*`.
//
// A base model id (`amazon.nova-canvas-v1:0`) is called in the stack's region: its ARN is
// `arn:aws:bedrock:{region}::foundation-model/{id}`. A cross-region inference profile id
// (`us.anthropic.claude-…`) needs two grants: the profile itself, in this account and region,
// and the underlying foundation model in every region the profile may route the request to
// (AWS's "Prerequisites for inference profiles": the caller needs the model in each
// destination region).

import { SettingsError } from './settings';

/** The geographic prefixes of cross-region inference profile ids. */
const PROFILE_PREFIX = /^(us|eu|apac|us-gov|ca|jp|au|global)\.(.+)$/;

export interface ModelArns {
  /** Foundation-model and inference-profile ARNs, sorted and without repeats. */
  readonly invoke: string[];
}

export function modelArns(
  modelIds: readonly string[],
  partition: string,
  region: string,
  account: string,
  profileRegions: Readonly<Record<string, readonly string[]>>,
): ModelArns {
  const arns = new Set<string>();
  for (const id of modelIds) {
    const profile = PROFILE_PREFIX.exec(id);
    if (profile === null) {
      arns.add(`arn:${partition}:bedrock:${region}::foundation-model/${id}`);
      continue;
    }
    const [, geography, baseModel] = profile;
    const regions = profileRegions[geography];
    if (regions === undefined || regions.length === 0) {
      throw new SettingsError(
        'inferenceProfileRegions',
        `has no regions for the "${geography}." profile of ${id}`,
        `add "${geography}": [the regions that profile routes to] (the Bedrock console lists them under Cross-region inference)`,
      );
    }
    if (!regions.includes(region)) {
      throw new SettingsError(
        'inferenceProfileRegions',
        `says the "${geography}." profiles do not start from ${region}`,
        `deploy to one of ${regions.join(', ')}, or use a profile offered in ${region}`,
      );
    }
    arns.add(`arn:${partition}:bedrock:${region}:${account}:inference-profile/${id}`);
    for (const destination of regions) {
      arns.add(`arn:${partition}:bedrock:${destination}::foundation-model/${baseModel}`);
    }
  }
  return { invoke: [...arns].sort() };
}

/** The ARN of a guardrail in this account and region. */
export function guardrailArn(partition: string, region: string, account: string, guardrailId: string): string {
  return `arn:${partition}:bedrock:${region}:${account}:guardrail/${guardrailId}`;
}
