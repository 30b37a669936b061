// The deployment's parameters, read once from CDK context (`cdk.json` and `-c name=value`)
// and checked here, so a mistake stops `cdk synth` with one line naming the context key and
// the fix, before anything reaches CloudFormation.

/** Where the stack is deployed. Explicit, so synthesis never asks AWS. */
export interface Environment {
  readonly account: string;
  readonly region: string;
}

/** An existing VPC, described in full so that no look-up is needed at synth time. */
export interface ExistingVpc {
  readonly vpcId: string;
  readonly vpcCidrBlock: string;
  readonly availabilityZones: string[];
  readonly publicSubnetIds: string[];
  readonly privateSubnetIds: string[];
}

export interface Settings {
  readonly env: Environment;
  /** The container image: an ECR repository in this account and region, and a tag. */
  readonly imageRepository: string;
  readonly imageTag: string;
  /** The public host name (with `certificateArn`, an ACM certificate in us-east-1 for it). */
  readonly domainName?: string;
  readonly certificateArn?: string;
  /** HTTPS from CloudFront to the load balancer: a DNS name for the ALB and its certificate. */
  readonly originDomainName?: string;
  readonly originCertificateArn?: string;
  /** The region's managed prefix list `com.amazonaws.global.cloudfront.origin-facing`. */
  readonly cloudFrontPrefixListId: string;
  /** A WAF web ACL (scope CLOUDFRONT, in us-east-1) for the distribution, if any. */
  readonly webAclArn?: string;
  readonly cognitoDomainPrefix: string;
  readonly selfSignUp: boolean;
  readonly existingVpc?: ExistingVpc;
  /** The two zones of a new VPC; by default the region's first two (Fn::GetAZs). */
  readonly availabilityZones?: string[];
  readonly natGateways: number;
  /** The service's tasks: the minimum, and the most autoscaling may run. */
  readonly desiredCount: number;
  readonly maxCount: number;
  /**
   * Image generations the account's Bedrock quotas allow at once, across the service; each
   * task gets an equal share of it at full scale (ATELIER_MAX_RUNNING_JOBS).
   */
  readonly bedrockImageConcurrency: number;
  /**
   * After SIGTERM and the drain, how long running image jobs may take to finish
   * (ATELIER_SHUTDOWN_GRACE_SECONDS); the container's stopTimeout is built around it.
   */
  readonly shutdownGraceSeconds: number;
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly cpuArchitecture: 'X86_64' | 'ARM64';
  readonly cpuTargetPercent: number;
  readonly requestsPerTarget: number;
  readonly logRetentionDays: number;
  /** How long CloudFront waits for the app's answer; over 60 s needs a CloudFront quota increase. */
  readonly originReadTimeoutSeconds: number;
  /** A key prefix inside the images bucket (`ATELIER_STORE=s3://bucket/prefix`), or none. */
  readonly storePrefix?: string;
  /** Every Bedrock model id or inference profile id the task may call. */
  readonly bedrockModelIds: string[];
  /** The regions a cross-region inference profile (`us.…`, `eu.…`) routes to, by its prefix. */
  readonly inferenceProfileRegions: Record<string, string[]>;
  readonly chatModel: string;
  readonly classifierModel: string;
  /** `alias=model-id` pairs passed as ATELIER_IMAGE_MODELS, when set. */
  readonly imageModels?: string;
  /** An existing guardrail (id, version), or undefined to create one in the stack. */
  readonly guardrail?: { readonly id: string; readonly version: string };
  readonly discordApplicationId?: string;
  /**
   * Sign in with Discord through Cognito (an OIDC identity provider named `Discord`), when
   * `discordClientId` is set: the Discord application's OAuth2 client id, and the Secrets
   * Manager secret (a name or an ARN) the operator stored its client secret in. Undefined: the
   * managed login offers email and password only, as before.
   */
  readonly discordSignIn?: DiscordSignIn;
  readonly discordMessageContent: boolean;
  /** Whether the tasks run the Discord bot (get the token) at all. */
  readonly discordBot: boolean;
  readonly deletionProtection: boolean;
  /** An email address the alarm topic notifies (an SNS email subscription), if any. */
  readonly alarmEmail?: string;
  /** Estimated model spend over a rolling 24 hours, in whole US dollars, above which an alarm fires. */
  readonly dailySpendAlarmUsd: number;
}

/** Sign in with Discord: what Cognito needs to federate the Discord application. */
export interface DiscordSignIn {
  /** The OAuth2 client id (the same number as the Discord application id). */
  readonly clientId: string;
  /**
   * The Secrets Manager secret holding the OAuth2 client secret as plain text: a name, or the
   * ARN of one in another account. Only a reference goes into the template; CloudFormation
   * reads the value when it creates or updates the identity provider.
   */
  readonly clientSecretName: string;
}

/** The secret `discordClientSecretName` names unless told otherwise (README: "Deploying to AWS"). */
export const DISCORD_CLIENT_SECRET_NAME = 'atelier/discord-client-secret';

/**
 * Seconds the process stays up unready after SIGTERM (ATELIER_SHUTDOWN_DRAIN_SECONDS), taking
 * no new jobs: ECS has normally drained the task from the load balancer before it sends
 * SIGTERM, so this covers only a request or Discord interaction already on its way.
 */
export const SHUTDOWN_DRAIN_SECONDS = 5;
/**
 * Seconds between the end of the grace for running jobs and SIGKILL: the web app answers
 * what is still in flight, the gateway closes, the replica marks itself stopped in the
 * bucket (so its leftovers are answered at once rather than after three missed heartbeats),
 * the spool's flusher stops and one last flush gets up to 3 seconds (src/serve.rs). Each is
 * one or two calls with their own timeouts.
 */
export const STOP_MARGIN_SECONDS = 15;
/** The longest stopTimeout Fargate accepts. */
export const MAX_STOP_TIMEOUT_SECONDS = 120;

/** Reads one context value; the CDK app hands us `node.tryGetContext`. */
export type ContextReader = (key: string) => unknown;

/** A setting that cannot be used, worded for the operator. */
export class SettingsError extends Error {
  constructor(key: string, problem: string, fix: string) {
    super(`context ${key}: ${problem}; ${fix}`);
    this.name = 'SettingsError';
  }
}

/**
 * The managed prefix list `com.amazonaws.global.cloudfront.origin-facing` has a different id
 * in every region, and finding it needs an AWS call, which synthesis must not make. These are
 * the ids AWS publishes for the regions below; any other region passes
 * `-c cloudFrontPrefixListId=pl-…`, found with
 * `aws ec2 describe-managed-prefix-lists --filters Name=prefix-list-name,Values=com.amazonaws.global.cloudfront.origin-facing`.
 */
export const CLOUDFRONT_PREFIX_LISTS: Record<string, string> = {
  'us-east-1': 'pl-3b927c52',
  'us-west-2': 'pl-82a045eb',
};

export function readSettings(context: ContextReader, environment: NodeJS.ProcessEnv = process.env): Settings {
  const text = (key: string): string | undefined => {
    const value = context(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new SettingsError(key, `is ${JSON.stringify(value)}, not text`, 'write it as text');
    }
    const trimmed = String(value).trim();
    return trimmed === '' ? undefined : trimmed;
  };
  const required = (key: string, fix: string): string => {
    const value = text(key);
    if (value === undefined) throw new SettingsError(key, 'is not set', fix);
    return value;
  };
  const integer = (key: string, fallback: number, min: number, max: number): number => {
    const raw = context(key);
    if (raw === undefined || raw === null || raw === '') return fallback;
    const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new SettingsError(key, `is ${JSON.stringify(raw)}`, `use a whole number from ${min} to ${max}`);
    }
    return value;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const raw = context(key);
    if (raw === undefined || raw === null || raw === '') return fallback;
    if (typeof raw === 'boolean') return raw;
    const value = String(raw).trim().toLowerCase();
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw new SettingsError(key, `is ${JSON.stringify(raw)}`, 'use true or false');
  };
  // Lists come as JSON arrays from cdk.json and as comma-separated text from `-c`.
  const list = (key: string): string[] | undefined => {
    const raw = context(key);
    if (raw === undefined || raw === null || raw === '') return undefined;
    const items = Array.isArray(raw) ? raw : String(raw).split(',');
    const values = items.map((item) => String(item).trim()).filter((item) => item !== '');
    if (values.length === 0) throw new SettingsError(key, 'is an empty list', 'name at least one, or leave it unset');
    return values;
  };

  const account = text('account') ?? environment.CDK_DEFAULT_ACCOUNT;
  const region = text('region') ?? environment.CDK_DEFAULT_REGION;
  if (account === undefined || !/^\d{12}$/.test(account)) {
    throw new SettingsError(
      'account',
      account === undefined ? 'is not set and no AWS credentials name one' : `is ${JSON.stringify(account)}`,
      'pass -c account=123456789012 (the 12-digit AWS account id)',
    );
  }
  if (region === undefined || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    throw new SettingsError(
      'region',
      region === undefined ? 'is not set and no AWS profile names one' : `is ${JSON.stringify(region)}`,
      'pass -c region=us-west-2 (a region where Bedrock offers the models you want)',
    );
  }

  const imageTag = required('imageTag', 'pass -c imageTag=<the tag you pushed to the ECR repository>');
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(imageTag)) {
    throw new SettingsError('imageTag', `is ${JSON.stringify(imageTag)}`, 'use a Docker tag such as 2026-11-25.1');
  }
  const imageRepository = text('imageRepository') ?? 'atelier';

  const domainName = text('domainName');
  const certificateArn = text('certificateArn');
  if ((domainName === undefined) !== (certificateArn === undefined)) {
    throw new SettingsError(
      domainName === undefined ? 'domainName' : 'certificateArn',
      'is needed with the other one',
      'set both domainName and certificateArn (an ACM certificate in us-east-1 for that name), or neither',
    );
  }
  if (certificateArn !== undefined && !certificateArn.startsWith('arn:aws:acm:us-east-1:')) {
    throw new SettingsError('certificateArn', 'is not an ACM certificate in us-east-1', 'CloudFront only uses certificates from us-east-1');
  }
  const originDomainName = text('originDomainName');
  const originCertificateArn = text('originCertificateArn');
  if ((originDomainName === undefined) !== (originCertificateArn === undefined)) {
    throw new SettingsError(
      originDomainName === undefined ? 'originDomainName' : 'originCertificateArn',
      'is needed with the other one',
      'set both (a DNS name you point at the load balancer and an ACM certificate for it in the stack region), or neither',
    );
  }

  const cloudFrontPrefixListId = text('cloudFrontPrefixListId') ?? CLOUDFRONT_PREFIX_LISTS[region];
  if (cloudFrontPrefixListId === undefined || !/^pl-[0-9a-f]+$/.test(cloudFrontPrefixListId)) {
    throw new SettingsError(
      'cloudFrontPrefixListId',
      cloudFrontPrefixListId === undefined ? `has no known default in ${region}` : `is ${JSON.stringify(cloudFrontPrefixListId)}`,
      'pass the id of com.amazonaws.global.cloudfront.origin-facing in this region (aws ec2 describe-managed-prefix-lists)',
    );
  }

  const cognitoDomainPrefix = text('cognitoDomainPrefix') ?? `atelier-${account}`;
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(cognitoDomainPrefix) || /aws|amazon|cognito/.test(cognitoDomainPrefix)) {
    throw new SettingsError(
      'cognitoDomainPrefix',
      `is ${JSON.stringify(cognitoDomainPrefix)}`,
      'use lower-case letters, digits and hyphens, without aws, amazon or cognito',
    );
  }

  let existingVpc: ExistingVpc | undefined;
  const vpcId = text('vpcId');
  if (vpcId !== undefined) {
    const vpcCidrBlock = text('vpcCidrBlock');
    if (vpcCidrBlock === undefined || !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(vpcCidrBlock)) {
      throw new SettingsError('vpcCidrBlock', vpcCidrBlock === undefined ? 'is not set but vpcId is' : `is ${JSON.stringify(vpcCidrBlock)}`, "give the VPC's IPv4 CIDR block, such as 10.0.0.0/16");
    }
    const availabilityZones = list('vpcAvailabilityZones');
    const publicSubnetIds = list('vpcPublicSubnetIds');
    const privateSubnetIds = list('vpcPrivateSubnetIds');
    for (const [key, value] of Object.entries({ vpcAvailabilityZones: availabilityZones, vpcPublicSubnetIds: publicSubnetIds, vpcPrivateSubnetIds: privateSubnetIds })) {
      if (value === undefined) throw new SettingsError(key, 'is not set but vpcId is', 'describe the VPC in full, so that synthesis needs no look-up');
    }
    if (publicSubnetIds!.length !== availabilityZones!.length || privateSubnetIds!.length !== availabilityZones!.length) {
      throw new SettingsError('vpcPrivateSubnetIds', 'does not have one subnet per availability zone', 'list one public and one private subnet for each zone, in the same order');
    }
    existingVpc = { vpcId, vpcCidrBlock, availabilityZones: availabilityZones!, publicSubnetIds: publicSubnetIds!, privateSubnetIds: privateSubnetIds! };
  }

  const desiredCount = integer('desiredCount', 2, 1, 50);
  const maxCount = integer('maxCount', 6, 1, 100);
  if (maxCount < desiredCount) {
    throw new SettingsError('maxCount', `is ${maxCount}, below desiredCount (${desiredCount})`, 'raise maxCount or lower desiredCount');
  }
  // The default keeps the app's own default of 4 running jobs a process at the default
  // maxCount of 6; set it from the account's quotas (infra/README.md).
  const bedrockImageConcurrency = integer('bedrockImageConcurrency', 24, 1, 10000);
  // Long enough for nearly every image to be delivered, and stopTimeout (drain, grace and the
  // margin) stays within Fargate's limit.
  const shutdownGraceSeconds = integer('shutdownGraceSeconds', 60, 0, MAX_STOP_TIMEOUT_SECONDS - SHUTDOWN_DRAIN_SECONDS - STOP_MARGIN_SECONDS);
  const cpu = integer('cpu', 1024, 256, 16384);
  const memoryMiB = integer('memoryMiB', 2048, 512, 122880);
  const architecture = (text('cpuArchitecture') ?? 'X86_64').toUpperCase();
  if (architecture !== 'X86_64' && architecture !== 'ARM64') {
    throw new SettingsError('cpuArchitecture', `is ${JSON.stringify(architecture)}`, 'use X86_64 or ARM64, matching the image you built');
  }

  const inferenceProfileRegions = context('inferenceProfileRegions') ?? {};
  if (typeof inferenceProfileRegions !== 'object' || Array.isArray(inferenceProfileRegions)) {
    throw new SettingsError('inferenceProfileRegions', 'is not an object', 'map each profile prefix to its regions, as cdk.json does');
  }
  const chatModel = text('chatModel') ?? 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
  const classifierModel = text('classifierModel') ?? 'us.anthropic.claude-haiku-4-5-20251001-v1:0';
  const imageModels = text('imageModels');
  const modelIds = new Set(list('bedrockModelIds') ?? []);
  modelIds.add(chatModel);
  modelIds.add(classifierModel);
  for (const pair of imageModels?.split(',') ?? []) {
    const [alias, id] = pair.split('=').map((part) => part.trim());
    if (!alias || !id) throw new SettingsError('imageModels', `has ${JSON.stringify(pair)}`, 'write alias=model-id pairs separated by commas');
    modelIds.add(id);
  }
  for (const id of modelIds) {
    if (!/^[a-z0-9][a-z0-9.:-]*$/.test(id)) {
      throw new SettingsError('bedrockModelIds', `has ${JSON.stringify(id)}`, 'use Bedrock model or inference profile ids such as amazon.nova-canvas-v1:0');
    }
  }

  let guardrail: Settings['guardrail'];
  const guardrailId = text('guardrailId');
  if (guardrailId !== undefined) {
    if (!/^[a-z0-9]+$/.test(guardrailId)) {
      throw new SettingsError('guardrailId', `is ${JSON.stringify(guardrailId)}`, 'use the guardrail id (not its ARN or name)');
    }
    guardrail = { id: guardrailId, version: text('guardrailVersion') ?? 'DRAFT' };
  }

  const discordApplicationId = text('discordApplicationId');
  if (discordApplicationId !== undefined && !/^\d{15,22}$/.test(discordApplicationId)) {
    throw new SettingsError('discordApplicationId', `is ${JSON.stringify(discordApplicationId)}`, 'use the numeric Application ID from the Discord developer portal');
  }

  // Sign in with Discord is on when the OAuth2 client id is given; the secret's name has a
  // default, so the client id alone is enough once the operator has stored the secret under it.
  const discordClientId = text('discordClientId');
  const discordClientSecretName = text('discordClientSecretName');
  let discordSignIn: DiscordSignIn | undefined;
  if (discordClientId !== undefined) {
    // A Discord id is larger than the integers a JSON number holds exactly.
    if (typeof context('discordClientId') === 'number') {
      throw new SettingsError('discordClientId', `is the number ${discordClientId}`, 'write it as text, in quotes: a JSON number cannot hold a Discord id exactly');
    }
    if (!/^\d{15,22}$/.test(discordClientId)) {
      throw new SettingsError(
        'discordClientId',
        `is ${JSON.stringify(discordClientId)}`,
        'use the numeric Client ID from OAuth2 in the Discord developer portal (the same number as the Application ID)',
      );
    }
    const clientSecretName = discordClientSecretName ?? DISCORD_CLIENT_SECRET_NAME;
    const secretName = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
    const secretArn = /^arn:aws(?:-cn|-us-gov)?:secretsmanager:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$/;
    if (!secretName.test(clientSecretName) && !secretArn.test(clientSecretName)) {
      throw new SettingsError(
        'discordClientSecretName',
        `is ${JSON.stringify(clientSecretName)}`,
        `give the name of the Secrets Manager secret that holds the Discord client secret (such as ${DISCORD_CLIENT_SECRET_NAME}), or its ARN`,
      );
    }
    discordSignIn = { clientId: discordClientId, clientSecretName };
  } else if (discordClientSecretName !== undefined) {
    throw new SettingsError(
      'discordClientSecretName',
      'is set but discordClientId is not',
      'set discordClientId as well to turn on Sign in with Discord, or leave both unset',
    );
  }

  const storePrefix = text('storePrefix')?.replace(/^\/+|\/+$/g, '');
  if (storePrefix !== undefined && !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(storePrefix)) {
    throw new SettingsError('storePrefix', `is ${JSON.stringify(storePrefix)}`, 'use letters, digits, ., _, - and / only');
  }

  // One address: SNS sends it a confirmation, and alarms reach it once it is confirmed. A list
  // belongs on the topic itself (more subscriptions, or a chat integration), not here.
  const alarmEmail = text('alarmEmail');
  if (alarmEmail !== undefined && !/^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$/.test(alarmEmail)) {
    throw new SettingsError('alarmEmail', `is ${JSON.stringify(alarmEmail)}`, 'give one email address, such as ops@example.com, or leave it unset');
  }

  return {
    env: { account, region },
    imageRepository,
    imageTag,
    domainName,
    certificateArn,
    originDomainName,
    originCertificateArn,
    cloudFrontPrefixListId,
    webAclArn: text('webAclArn'),
    cognitoDomainPrefix,
    selfSignUp: flag('selfSignUp', true),
    existingVpc,
    availabilityZones: list('availabilityZones'),
    natGateways: integer('natGateways', 1, 1, 3),
    desiredCount,
    maxCount,
    bedrockImageConcurrency,
    shutdownGraceSeconds,
    cpu,
    memoryMiB,
    cpuArchitecture: architecture,
    cpuTargetPercent: integer('cpuTargetPercent', 60, 10, 95),
    requestsPerTarget: integer('requestsPerTarget', 200, 10, 100000),
    originReadTimeoutSeconds: integer('originReadTimeoutSeconds', 60, 1, 180),
    logRetentionDays: retentionDays(integer('logRetentionDays', 30, 1, 3653)),
    storePrefix: storePrefix === '' ? undefined : storePrefix,
    bedrockModelIds: [...modelIds].sort(),
    inferenceProfileRegions: inferenceProfileRegions as Record<string, string[]>,
    chatModel,
    classifierModel,
    imageModels,
    guardrail,
    discordApplicationId,
    discordSignIn,
    discordMessageContent: flag('discordMessageContent', false),
    discordBot: flag('discordBot', true),
    deletionProtection: flag('deletionProtection', true),
    alarmEmail,
    dailySpendAlarmUsd: integer('dailySpendAlarmUsd', 50, 1, 1000000),
  };
}

/** The retention periods CloudWatch Logs accepts. */
const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

function retentionDays(days: number): number {
  if (!RETENTION_DAYS.includes(days)) {
    throw new SettingsError('logRetentionDays', `is ${days}`, `use one of ${RETENTION_DAYS.join(', ')}`);
  }
  return days;
}
