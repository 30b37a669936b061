// The properties that matter most, as assertions on a synthesised template. stack.test.ts
// checks that the stack has them; negative.test.ts checks that they notice when it does not.

import * as assert from 'node:assert/strict';

import { resourcesOfType, type TemplateJson } from './helpers';

const SECRET_SETTINGS = ['ATELIER_DISCORD_TOKEN', 'ATELIER_OIDC_CLIENT_SECRET', 'ATELIER_SESSION_SECRET'];

function logicalIdOf(template: TemplateJson, type: string, pathPart: string): string {
  const found = resourcesOfType(template, type).filter(([, resource]) => String(resource.Metadata?.['aws:cdk:path'] ?? '').includes(pathPart));
  assert.equal(found.length, 1, `one ${type} at ${pathPart}`);
  return found[0][0];
}

/** Every bucket blocks public access in all four ways and encrypts at rest. */
export function assertBucketsPrivate(template: TemplateJson): void {
  const buckets = resourcesOfType(template, 'AWS::S3::Bucket');
  assert.ok(buckets.length >= 2, 'the images bucket and the log bucket');
  for (const [id, bucket] of buckets) {
    assert.deepEqual(
      bucket.Properties?.PublicAccessBlockConfiguration,
      { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      `${id} blocks public access`,
    );
    const algorithm = bucket.Properties?.BucketEncryption?.ServerSideEncryptionConfiguration?.[0]?.ServerSideEncryptionByDefault?.SSEAlgorithm;
    assert.ok(['AES256', 'aws:kms'].includes(algorithm), `${id} is encrypted at rest`);
    assert.equal(bucket.Properties?.OwnershipControls?.Rules?.[0]?.ObjectOwnership, 'BucketOwnerEnforced', `${id} has no ACLs`);
  }
}

/** Every bucket's policy denies every request made without TLS. */
export function assertBucketsTlsOnly(template: TemplateJson): void {
  const policies = resourcesOfType(template, 'AWS::S3::BucketPolicy');
  for (const [id] of resourcesOfType(template, 'AWS::S3::Bucket')) {
    const policy = policies.find(([, candidate]) => candidate.Properties?.Bucket?.Ref === id);
    assert.ok(policy, `${id} has a bucket policy`);
    const statements: any[] = policy[1].Properties.PolicyDocument.Statement;
    assert.ok(
      statements.some(
        (statement) =>
          statement.Effect === 'Deny' &&
          statement.Action === 's3:*' &&
          statement.Principal?.AWS === '*' &&
          statement.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      ),
      `${id}'s policy denies requests without TLS`,
    );
  }
}

/** All the statements of every IAM policy attached to the role with this path part. */
export function roleStatements(template: TemplateJson, rolePathPart: string): any[] {
  const roleId = logicalIdOf(template, 'AWS::IAM::Role', rolePathPart);
  const statements: any[] = [];
  for (const [, policy] of [...resourcesOfType(template, 'AWS::IAM::Policy'), ...resourcesOfType(template, 'AWS::IAM::ManagedPolicy')]) {
    const roles: any[] = policy.Properties?.Roles ?? [];
    if (roles.some((role) => role?.Ref === roleId)) statements.push(...policy.Properties.PolicyDocument.Statement);
  }
  const role = template.Resources[roleId];
  for (const inline of role.Properties?.Policies ?? []) statements.push(...inline.PolicyDocument.Statement);
  assert.equal(role.Properties?.ManagedPolicyArns, undefined, 'the task role has no managed policies');
  return statements;
}

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** The log writes the metrics collector makes (EMF events, one stream per task). */
const METRICS_LOG_ACTIONS = ['logs:CreateLogStream', 'logs:PutLogEvents'];

/**
 * The task role: Bedrock actions named one by one on model, profile and guardrail ARNs without
 * wildcards; S3 on the images bucket only; Cognito on the user pool only; CloudFront
 * invalidations of this stack's distribution only; log writes on the metrics log group only;
 * nothing else (no CloudWatch API at all: metrics go as EMF log events).
 */
export function assertTaskRoleLeastPrivilege(template: TemplateJson): void {
  const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', '/Images/');
  const poolId = logicalIdOf(template, 'AWS::Cognito::UserPool', '/Users/');
  const metricsLogsId = logicalIdOf(template, 'AWS::Logs::LogGroup', '/Monitoring/MetricsLogs/');
  const distributionId = logicalIdOf(template, 'AWS::CloudFront::Distribution', '/Distribution/');
  const statements = roleStatements(template, '/TaskRole/');
  assert.ok(statements.length > 0, 'the task role has a policy');
  for (const statement of statements) {
    assert.equal(statement.Effect, 'Allow', 'the task policy only allows');
    assert.equal(statement.NotAction, undefined, 'no NotAction');
    assert.equal(statement.NotResource, undefined, 'no NotResource');
    const actions = list<string>(statement.Action);
    const resources = list<any>(statement.Resource);
    for (const resource of resources) assert.notEqual(resource, '*', `${actions.join(', ')} is not allowed on every resource`);
    for (const action of actions) assert.ok(!action.includes('*'), `${action} is named without wildcards`);
    const services = new Set(actions.map((action) => action.split(':')[0]));
    assert.equal(services.size, 1, 'one service per statement');
    const [service] = services;
    switch (service) {
      case 'bedrock':
        for (const resource of resources) {
          if (typeof resource === 'string') {
            assert.match(
              resource,
              /^arn:aws:bedrock:[a-z0-9-]+:(\d{12})?:(foundation-model|inference-profile|guardrail)\/[A-Za-z0-9.:_-]+$/,
              `${resource} is one Bedrock model, profile or guardrail`,
            );
          } else {
            assert.deepEqual(Object.keys(resource), ['Fn::GetAtt'], 'a computed Bedrock resource is an attribute of this stack');
            assert.equal(resource['Fn::GetAtt'][1], 'GuardrailArn');
          }
        }
        break;
      case 's3':
        for (const resource of resources) {
          const text = JSON.stringify(resource);
          assert.ok(text.includes(`"${bucketId}"`), `S3 access is on the images bucket only: ${text}`);
        }
        break;
      case 'cognito-idp':
        for (const resource of resources) assert.deepEqual(resource, { 'Fn::GetAtt': [poolId, 'Arn'] }, 'Cognito access is on the pool only');
        break;
      case 'cloudfront':
        assert.deepEqual(actions, ['cloudfront:CreateInvalidation'], 'CloudFront: invalidations only');
        for (const resource of resources) {
          const parts = resource?.['Fn::Join']?.[1];
          assert.ok(Array.isArray(parts), `a CloudFront resource is this stack's distribution's ARN: ${JSON.stringify(resource)}`);
          assert.match(String(parts[0]), /^arn:aws[a-z-]*:cloudfront::\d{12}:distribution\/$/, 'a distribution ARN');
          assert.deepEqual(parts.slice(1), [{ Ref: distributionId }], "CloudFront access is on this stack's distribution only");
        }
        break;
      case 'logs':
        for (const action of actions) assert.ok(METRICS_LOG_ACTIONS.includes(action), `${action} is one of the collector's log writes`);
        for (const resource of resources) {
          assert.deepEqual(resource, { 'Fn::GetAtt': [metricsLogsId, 'Arn'] }, 'log writes are on the metrics log group only');
        }
        break;
      default:
        assert.fail(`the task role has no business with ${service}`);
    }
  }
}

/** The load balancer admits CloudFront's origin-facing prefix list, on one port, and nothing else. */
export function assertLoadBalancerOnlyFromCloudFront(template: TemplateJson, prefixListId: string): void {
  const groupId = logicalIdOf(template, 'AWS::EC2::SecurityGroup', '/LoadBalancerSecurityGroup/');
  const group = template.Resources[groupId];
  const inline: any[] = group.Properties?.SecurityGroupIngress ?? [];
  const standalone = resourcesOfType(template, 'AWS::EC2::SecurityGroupIngress')
    .map(([, rule]) => rule.Properties)
    .filter((rule) => rule.GroupId?.['Fn::GetAtt']?.[0] === groupId);
  const rules = [...inline, ...standalone];
  assert.equal(rules.length, 1, 'the load balancer has exactly one ingress rule');
  assert.equal(rules[0].SourcePrefixListId, prefixListId, "its source is CloudFront's origin-facing prefix list");
  assert.equal(rules[0].CidrIp, undefined);
  assert.equal(rules[0].CidrIpv6, undefined);
  assert.equal(rules[0].SourceSecurityGroupId, undefined);
  // Nothing anywhere admits an address range.
  for (const [id, rule] of resourcesOfType(template, 'AWS::EC2::SecurityGroupIngress')) {
    assert.equal(rule.Properties.CidrIp, undefined, `${id} admits no address range`);
    assert.equal(rule.Properties.CidrIpv6, undefined, `${id} admits no address range`);
  }
  for (const [id, other] of resourcesOfType(template, 'AWS::EC2::SecurityGroup')) {
    assert.deepEqual(other.Properties?.SecurityGroupIngress?.filter((rule: any) => rule.CidrIp || rule.CidrIpv6) ?? [], [], `${id} admits no address range`);
  }
}

/**
 * Nothing on the internet is served in plain HTTP: every load balancer is internal, and
 * CloudFront reaches each through a VPC origin, whose endpoint is that load balancer.
 */
export function assertLoadBalancersInternal(template: TemplateJson): void {
  const balancers = resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
  assert.ok(balancers.length >= 1, 'the stack has a load balancer');
  const vpcOrigins = resourcesOfType(template, 'AWS::CloudFront::VpcOrigin');
  for (const [id, balancer] of balancers) {
    // CloudFormation's default scheme is internet-facing, so it must be spelled out.
    assert.equal(balancer.Properties?.Scheme, 'internal', `${id} is internal`);
    assert.ok(
      vpcOrigins.some(([, origin]) => origin.Properties.VpcOriginEndpointConfig?.Arn?.Ref === id),
      `${id} is the endpoint of a CloudFront VPC origin`,
    );
  }
}

/** Secret settings reach the containers as ECS secrets, never as plain environment. */
export function assertSecretsNotInEnvironment(template: TemplateJson): void {
  const seen = new Set<string>();
  for (const [id, definition] of resourcesOfType(template, 'AWS::ECS::TaskDefinition')) {
    for (const container of definition.Properties.ContainerDefinitions) {
      for (const variable of container.Environment ?? []) {
        assert.ok(!SECRET_SETTINGS.includes(variable.Name), `${id}: ${variable.Name} is not plain environment`);
        assert.doesNotMatch(variable.Name, /TOKEN|SECRET|PASSWORD|PRIVATE_KEY/, `${id}: ${variable.Name} is not plain environment`);
      }
      for (const secret of container.Secrets ?? []) {
        assert.ok(JSON.stringify(secret.ValueFrom).includes('Ref'), `${id}: ${secret.Name} comes from a secret of this stack`);
        seen.add(secret.Name);
      }
    }
  }
  assert.deepEqual([...seen].sort(), [...SECRET_SETTINGS].sort(), 'both secrets reach a container');
}

/**
 * Every Cognito identity provider's client secret is a Secrets Manager dynamic reference, which
 * CloudFormation resolves at deployment: never a literal in the template.
 */
export function assertIdentityProviderSecretsReferenced(template: TemplateJson): void {
  for (const [id, provider] of resourcesOfType(template, 'AWS::Cognito::UserPoolIdentityProvider')) {
    const secret = provider.Properties?.ProviderDetails?.client_secret;
    if (secret === undefined) continue;
    assert.equal(typeof secret, 'string', `${id}'s client secret is one dynamic reference`);
    assert.match(secret, /^\{\{resolve:secretsmanager:[^{}]+\}\}$/, `${id}'s client secret comes from Secrets Manager`);
  }
}

/** The service rolls back a deployment that does not become healthy. */
export function assertCircuitBreakers(template: TemplateJson): void {
  const services = resourcesOfType(template, 'AWS::ECS::Service');
  assert.equal(services.length, 1, 'one service runs the web app and the bot');
  for (const [id, service] of services) {
    assert.deepEqual(service.Properties.DeploymentConfiguration?.DeploymentCircuitBreaker, { Enable: true, Rollback: true }, `${id} rolls back`);
  }
}

/** Every log group keeps its logs for the configured time, not forever. */
export function assertLogRetention(template: TemplateJson, days: number): void {
  const groups = resourcesOfType(template, 'AWS::Logs::LogGroup');
  assert.ok(groups.length >= 1);
  for (const [id, group] of groups) assert.equal(group.Properties?.RetentionInDays, days, `${id} keeps logs ${days} days`);
}

/** The app's container (`atelier`) of the one task definition, and its environment by name. */
function theContainer(template: TemplateJson): { definition: any; container: any; env: Record<string, string> } {
  const definitions = resourcesOfType(template, 'AWS::ECS::TaskDefinition');
  assert.equal(definitions.length, 1, 'one task definition');
  const definition = definitions[0][1];
  const container = definition.Properties.ContainerDefinitions.find((candidate: any) => candidate.Name === 'atelier');
  assert.ok(container, 'the task definition has the app’s container, atelier');
  const env = Object.fromEntries((container.Environment ?? []).map((variable: any) => [variable.Name, variable.Value]));
  return { definition, container, env };
}

/** The most seconds Fargate waits between SIGTERM and SIGKILL. */
const FARGATE_MAX_STOP_TIMEOUT = 120;

/**
 * A stop fits: the container's stopTimeout covers the drain, the grace for running jobs and
 * some seconds to close down, within Fargate's maximum; the load balancer's deregistration
 * delay is no shorter than the drain.
 */
export function assertGracefulStop(template: TemplateJson, marginSeconds: number): void {
  const { container, env } = theContainer(template);
  const drain = Number(env.ATELIER_SHUTDOWN_DRAIN_SECONDS);
  const grace = Number(env.ATELIER_SHUTDOWN_GRACE_SECONDS);
  assert.ok(Number.isInteger(drain) && drain > 0, `ATELIER_SHUTDOWN_DRAIN_SECONDS is set: ${env.ATELIER_SHUTDOWN_DRAIN_SECONDS}`);
  assert.ok(Number.isInteger(grace) && grace > 0, `ATELIER_SHUTDOWN_GRACE_SECONDS is set: ${env.ATELIER_SHUTDOWN_GRACE_SECONDS}`);
  const stop = container.StopTimeout;
  assert.ok(typeof stop === 'number', 'the container has a stopTimeout');
  assert.ok(stop >= drain + grace + marginSeconds, `stopTimeout ${stop} s covers drain ${drain} s + grace ${grace} s + ${marginSeconds} s to stop`);
  assert.ok(stop <= FARGATE_MAX_STOP_TIMEOUT, `stopTimeout ${stop} s is within Fargate's ${FARGATE_MAX_STOP_TIMEOUT} s`);
  const groups = resourcesOfType(template, 'AWS::ElasticLoadBalancingV2::TargetGroup');
  assert.equal(groups.length, 1);
  const attributes: any[] = groups[0][1].Properties.TargetGroupAttributes ?? [];
  const delay = Number(attributes.find((attribute) => attribute.Key === 'deregistration_delay.timeout_seconds')?.Value);
  assert.ok(delay >= drain, `the deregistration delay (${delay} s) is no shorter than the drain (${drain} s)`);
}

/**
 * The spool is writable on a read-only root filesystem: ATELIER_SPOOL_DIR is the path of a
 * writable mount of a task volume (a bind mount on the task's ephemeral storage).
 */
export function assertSpoolWritable(template: TemplateJson): void {
  const { definition, container, env } = theContainer(template);
  assert.equal(container.ReadonlyRootFilesystem, true, 'the root filesystem is read-only');
  const spool = env.ATELIER_SPOOL_DIR;
  assert.ok(typeof spool === 'string' && spool.startsWith('/'), `ATELIER_SPOOL_DIR is an absolute path: ${spool}`);
  const mount = (container.MountPoints ?? []).find((point: any) => point.ContainerPath === spool);
  assert.ok(mount, `a volume is mounted at ATELIER_SPOOL_DIR (${spool})`);
  assert.notEqual(mount.ReadOnly, true, 'the spool mount is writable');
  const volume = (definition.Properties.Volumes ?? []).find((candidate: any) => candidate.Name === mount.SourceVolume);
  assert.ok(volume, `the task defines the volume ${mount.SourceVolume}`);
  assert.equal(volume.EFSVolumeConfiguration, undefined, 'the spool is on the task’s own storage');
}

/**
 * Jobs in progress and people's usage ledgers never expire: no lifecycle rule that expires
 * current objects covers `jobs/` or `users/` (where `users/{owner}/usage.json` lives).
 */
export function assertStateNeverExpires(template: TemplateJson, storePrefix = ''): void {
  const bucketId = logicalIdOf(template, 'AWS::S3::Bucket', '/Images/');
  const rules: any[] = template.Resources[bucketId].Properties?.LifecycleConfiguration?.Rules ?? [];
  for (const key of [`${storePrefix}jobs/0.json`, `${storePrefix}users/someone/usage.json`]) {
    for (const rule of rules) {
      const prefix: string = rule.Prefix ?? rule.Filter?.Prefix ?? '';
      const expires = rule.ExpirationInDays !== undefined || rule.ExpirationDate !== undefined;
      assert.ok(!(expires && key.startsWith(prefix)), `rule ${rule.Id} would expire ${key}`);
    }
  }
}

/**
 * Nothing but the app can stop the task or starve it: every other container (the metrics
 * collector) is not essential, has a read-only root filesystem and a hard memory limit of at
 * most half the task's, and the app's container is essential.
 */
export function assertSidecarsCannotStopTheApp(template: TemplateJson): void {
  const { definition, container } = theContainer(template);
  assert.notEqual(container.Essential, false, 'the app’s container is essential');
  const taskMemory = Number(definition.Properties.Memory);
  const others: any[] = definition.Properties.ContainerDefinitions.filter((candidate: any) => candidate !== container);
  assert.ok(others.length >= 1, 'the task has a sidecar (the metrics collector)');
  for (const other of others) {
    assert.equal(other.Essential, false, `${other.Name} is not essential: when it stops, the task keeps running`);
    assert.equal(other.ReadonlyRootFilesystem, true, `${other.Name} has a read-only root filesystem`);
    assert.ok(typeof other.Memory === 'number' && other.Memory <= taskMemory / 2, `${other.Name} has a hard memory limit of at most half the task's`);
  }
}
