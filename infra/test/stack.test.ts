// The stack as synthesised from cdk.json's defaults, and with every option set.

import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Match, Template } from 'aws-cdk-lib/assertions';

import { modelArns } from '../lib/bedrock';
import { DISCORD_BOT_PERMISSIONS, DISCORD_IDENTITY_PROVIDER, DISCORD_OIDC, METRICS_PORT, runningJobsPerTask, SPOOL_DIR } from '../lib/atelier-stack';
import { ALARM_THRESHOLDS, COLLECTOR_CONTAINER, COLLECTOR_IMAGE, metricsNamespace } from '../lib/monitoring';
import { DISCORD_CLIENT_SECRET_NAME, readSettings, SettingsError, SHUTDOWN_DRAIN_SECONDS, STOP_MARGIN_SECONDS } from '../lib/settings';
import { resourcesOfType, runGuard, synth, TEST_CONTEXT } from './helpers';
import {
  assertBucketsPrivate,
  assertBucketsTlsOnly,
  assertCircuitBreakers,
  assertGracefulStop,
  assertIdentityProviderSecretsReferenced,
  assertLoadBalancerOnlyFromCloudFront,
  assertLoadBalancersInternal,
  assertLogRetention,
  assertSecretsNotInEnvironment,
  assertSidecarsCannotStopTheApp,
  assertSpoolWritable,
  assertStateNeverExpires,
  assertTaskRoleLeastPrivilege,
  roleStatements,
} from './invariants';

/** cdk.json's defaults, with Sign in with Discord (the test context has a Discord client id). */
const defaults = synth();
const template = Template.fromJSON(defaults.template);
/** cdk.json's defaults as they are: no Discord client id, so no Sign in with Discord. */
const withoutDiscord = synth({ discordClientId: undefined });

/**
 * Every option set: a domain, HTTPS to the origin, a WAF ACL, an existing VPC and guardrail, and
 * the Discord client secret in a secret named by its ARN.
 */
const everything = synth({
  domainName: 'atelier.example.com',
  certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555',
  originDomainName: 'origin.atelier.example.com',
  originCertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/66666666-7777-8888-9999-000000000000',
  webAclArn: 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/atelier/abcd',
  vpcId: 'vpc-0123456789abcdef0',
  vpcCidrBlock: '10.20.0.0/16',
  vpcAvailabilityZones: 'us-east-1a,us-east-1b',
  vpcPublicSubnetIds: 'subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2',
  vpcPrivateSubnetIds: 'subnet-0bbbbbbbbbbbbbbb1,subnet-0bbbbbbbbbbbbbbb2',
  guardrailId: 'abc123def456',
  guardrailVersion: '3',
  discordApplicationId: '123456789012345678',
  discordClientSecretName: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:atelier/discord-client-secret-AbCdEf',
  storePrefix: 'atelier',
  imageModels: 'nova=amazon.nova-canvas-v1:0,extra=stability.sd3-5-large-v1:0',
});

function environmentOf(definition: any): Record<string, unknown> {
  return Object.fromEntries(definition.Properties.ContainerDefinitions[0].Environment.map((variable: any) => [variable.Name, variable.Value]));
}

function logicalId(stack: typeof defaults, type: string, part: string): string {
  const found = resourcesOfType(stack.template, type).filter(([, resource]) => String(resource.Metadata['aws:cdk:path']).includes(part));
  assert.equal(found.length, 1, `one ${type} at ${part}`);
  return found[0][0];
}

function taskDefinition(stack: typeof defaults, part: string): any {
  const found = resourcesOfType(stack.template, 'AWS::ECS::TaskDefinition').find(([, definition]) =>
    String(definition.Metadata['aws:cdk:path']).includes(part),
  );
  assert.ok(found, part);
  return found[1];
}

describe('the images bucket', () => {
  it('is private: public access blocked, encrypted, no ACLs', () => {
    assertBucketsPrivate(defaults.template);
    assertBucketsPrivate(everything.template);
  });

  it('accepts TLS requests only', () => {
    assertBucketsTlsOnly(defaults.template);
    assertBucketsTlsOnly(everything.template);
  });

  it('keeps versions, logs access, and has lifecycle rules for spooled state and thumbnails', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      LoggingConfiguration: { DestinationBucketName: { Ref: Match.stringLikeRegexp('^LogBucket') }, LogFilePrefix: 'images-bucket/' },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Id: 'abort-incomplete-uploads', AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } }),
          Match.objectLike({ Id: 'expire-link-tokens', Prefix: 'links/tokens/', ExpirationInDays: 1 }),
          Match.objectLike({ Id: 'expire-sign-ins', Prefix: 'sign-ins/', ExpirationInDays: 1, ObjectSizeGreaterThan: Match.absent() }),
          Match.objectLike({ Id: 'expire-sessions', Prefix: 'sessions/', ExpirationInDays: 8 }),
          Match.objectLike({ Id: 'expire-claims', Prefix: 'claims/', ExpirationInDays: 1 }),
          Match.objectLike({ Id: 'full-images-to-intelligent-tiering', Prefix: 'users/', ObjectSizeGreaterThan: '131072' }),
          Match.objectLike({ Id: 'expire-old-versions', NoncurrentVersionExpiration: { NoncurrentDays: 30 } }),
        ]),
      },
    });
  });

  it('expires the heartbeats of replicas long gone, and never jobs in progress or usage ledgers', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({ Id: 'expire-replica-heartbeats', Prefix: 'replicas/', ExpirationInDays: 7, NoncurrentVersionExpiration: { NoncurrentDays: 1 } }),
        ]),
      },
    });
    assertStateNeverExpires(defaults.template);
    assertStateNeverExpires(everything.template, 'atelier/');
    Template.fromJSON(everything.template).hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-replica-heartbeats', Prefix: 'atelier/replicas/' })]) },
    });
  });

  it('puts the store prefix in front of the lifecycle prefixes and the task permissions', () => {
    Template.fromJSON(everything.template).hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-link-tokens', Prefix: 'atelier/links/tokens/' })]) },
    });
    const s3 = roleStatements(everything.template, '/TaskRole/').find((statement) => statement.Sid === 'ReadWriteImages');
    assert.match(JSON.stringify(s3.Resource), /"\/atelier\/\*"/);
    const env = environmentOf(taskDefinition(everything, '/Task/'));
    assert.match(JSON.stringify(env.ATELIER_STORE), /\/atelier"/);
  });
});

describe('the task role', () => {
  it('has least privilege', () => {
    assertTaskRoleLeastPrivilege(defaults.template);
    assertTaskRoleLeastPrivilege(everything.template);
  });

  it('may invoke exactly the configured models, in the regions their inference profiles use', () => {
    const invoke = roleStatements(defaults.template, '/TaskRole/').find((statement) => statement.Sid === 'InvokeConfiguredModels');
    assert.deepEqual(invoke.Action, ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream']);
    assert.ok(invoke.Resource.includes('arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-canvas-v1:0'));
    assert.ok(invoke.Resource.includes('arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0'));
    for (const region of ['us-east-1', 'us-east-2', 'us-west-2']) {
      assert.ok(invoke.Resource.includes(`arn:aws:bedrock:${region}::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0`));
    }
    assert.ok(!invoke.Resource.includes('arn:aws:bedrock:us-west-2::foundation-model/amazon.nova-canvas-v1:0'), 'base models only in the stack region');
  });

  it('may apply the stack’s guardrail, or the named one', () => {
    const mine = roleStatements(defaults.template, '/TaskRole/').find((statement) => statement.Sid === 'ApplyGuardrail');
    assert.deepEqual(mine.Resource, { 'Fn::GetAtt': ['Guardrail', 'GuardrailArn'] });
    const named = roleStatements(everything.template, '/TaskRole/').find((statement) => statement.Sid === 'ApplyGuardrail');
    assert.equal(named.Resource, 'arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123def456');
    const env = environmentOf(taskDefinition(everything, '/Task/'));
    assert.equal(env.ATELIER_GUARDRAIL_ID, 'abc123def456');
    assert.equal(env.ATELIER_GUARDRAIL_VERSION, '3');
  });

  it('may only set and clear the linked Discord id on users of its own pool', () => {
    const cognito = roleStatements(defaults.template, '/TaskRole/').find((statement) => statement.Sid === 'RecordLinkedDiscordAccounts');
    assert.deepEqual(cognito.Action, ['cognito-idp:AdminDeleteUserAttributes', 'cognito-idp:AdminGetUser', 'cognito-idp:AdminUpdateUserAttributes']);
  });

  it('may invalidate cached pages of its own distribution only, which the app is told the id of', () => {
    for (const stack of [defaults, everything]) {
      const distribution = logicalId(stack, 'AWS::CloudFront::Distribution', '/Distribution/');
      const forget = roleStatements(stack.template, '/TaskRole/').filter((statement) => statement.Sid === 'ForgetUnpublishedPages');
      assert.equal(forget.length, 1, 'one statement');
      assert.equal(forget[0].Effect, 'Allow');
      assert.equal(forget[0].Action, 'cloudfront:CreateInvalidation');
      assert.deepEqual(forget[0].Resource, { 'Fn::Join': ['', ['arn:aws:cloudfront::123456789012:distribution/', { Ref: distribution }]] });
      const cloudfront = roleStatements(stack.template, '/TaskRole/').filter((statement) =>
        JSON.stringify(statement.Action).includes('cloudfront:'),
      );
      assert.deepEqual(cloudfront, forget, 'no other CloudFront permission');
      const env = environmentOf(taskDefinition(stack, '/Task/'));
      assert.deepEqual(env.ATELIER_CLOUDFRONT_DISTRIBUTION_ID, { Ref: distribution });
    }
  });

  it('is assumed by ECS tasks of this account only', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      Description: Match.stringLikeRegexp('^Atelier tasks'),
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'ecs-tasks.amazonaws.com' }, Condition: { StringEquals: { 'aws:SourceAccount': '123456789012' } } })],
      },
    });
  });
});

describe('the load balancer', () => {
  it('is internal, in the private subnets, with no public address', () => {
    assertLoadBalancersInternal(defaults.template);
    assertLoadBalancersInternal(everything.template);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internal',
      Subnets: [{ Ref: Match.stringLikeRegexp('^VpcprivateSubnet1') }, { Ref: Match.stringLikeRegexp('^VpcprivateSubnet2') }],
    });
    Template.fromJSON(everything.template).hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internal',
      Subnets: ['subnet-0bbbbbbbbbbbbbbb1', 'subnet-0bbbbbbbbbbbbbbb2'],
    });
  });

  it('is reached by CloudFront through a VPC origin, in HTTP that stays inside AWS by default', () => {
    const [balancerId] = resourcesOfType(defaults.template, 'AWS::ElasticLoadBalancingV2::LoadBalancer')[0];
    const vpcOrigins = resourcesOfType(defaults.template, 'AWS::CloudFront::VpcOrigin');
    assert.equal(vpcOrigins.length, 1, 'one VPC origin, shared by every behaviour');
    const [vpcOriginId, vpcOrigin] = vpcOrigins[0];
    assert.deepEqual(vpcOrigin.Properties.VpcOriginEndpointConfig.Arn, { Ref: balancerId });
    assert.equal(vpcOrigin.Properties.VpcOriginEndpointConfig.OriginProtocolPolicy, 'http-only');
    assert.equal(vpcOrigin.Properties.VpcOriginEndpointConfig.HTTPPort, 80);
    const origins: any[] = resourcesOfType(defaults.template, 'AWS::CloudFront::Distribution')[0][1].Properties.DistributionConfig.Origins;
    assert.equal(origins.length, 1);
    assert.deepEqual(origins[0].VpcOriginConfig, { VpcOriginId: { 'Fn::GetAtt': [vpcOriginId, 'Id'] }, OriginReadTimeout: 60, OriginKeepaliveTimeout: 5 });
    assert.equal(origins[0].CustomOriginConfig, undefined, 'no origin on the internet');
    assert.deepEqual(origins[0].DomainName, { 'Fn::GetAtt': [balancerId, 'DNSName'] });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    template.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 80, ToPort: 80, SourcePrefixListId: 'pl-3b927c52' });
  });

  it('is reachable from CloudFront only', () => {
    assertLoadBalancerOnlyFromCloudFront(defaults.template, 'pl-3b927c52');
    assertLoadBalancerOnlyFromCloudFront(everything.template, 'pl-3b927c52');
  });

  it('forwards only requests that carry the secret origin header, and answers 403 to the rest', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      DefaultActions: [Match.objectLike({ Type: 'fixed-response', FixedResponseConfig: Match.objectLike({ StatusCode: '403' }) })],
    });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::ListenerRule', {
      Conditions: [
        {
          Field: 'http-header',
          HttpHeaderConfig: { HttpHeaderName: 'X-Origin-Verify', Values: [Match.objectLike({ 'Fn::Join': Match.anyValue() })] },
        },
      ],
      Actions: [Match.objectLike({ Type: 'forward' })],
    });
    // The header value is a Secrets Manager dynamic reference, never text in the template.
    assert.match(JSON.stringify(defaults.template), /\{\{resolve:secretsmanager:/);
  });

  it('speaks HTTPS to CloudFront when an origin certificate is given', () => {
    const full = Template.fromJSON(everything.template);
    full.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      SslPolicy: Match.anyValue(),
      Certificates: [{ CertificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/66666666-7777-8888-9999-000000000000' }],
    });
    full.resourcePropertiesCountIs('AWS::ElasticLoadBalancingV2::Listener', { Protocol: 'HTTP' }, 0);
    full.hasResourceProperties('AWS::CloudFront::VpcOrigin', {
      VpcOriginEndpointConfig: Match.objectLike({ OriginProtocolPolicy: 'https-only', HTTPSPort: 443, OriginSSLProtocols: ['TLSv1.2'] }),
    });
    // Through the VPC origin still; the certificate is checked against originDomainName.
    full.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: {
        Origins: [
          Match.objectLike({ DomainName: 'origin.atelier.example.com', VpcOriginConfig: Match.objectLike({ VpcOriginId: Match.anyValue() }), CustomOriginConfig: Match.absent() }),
        ],
      },
    });
    full.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 443, SourcePrefixListId: 'pl-3b927c52' });
  });

  it('sends only to the tasks’ port, so EC2’s default allow-all egress is gone', () => {
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('^Atelier load balancer'),
      SecurityGroupEgress: [Match.objectLike({ FromPort: 8080, ToPort: 8080, IpProtocol: 'tcp' })],
    });
  });

  it('checks the tasks on /healthz, not /readyz, which a bucket outage would fail on every task at once', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckPath: '/healthz',
      Port: 8080,
      TargetType: 'ip',
    });
  });

  it('drains a task for as long as CloudFront waits for a page before ECS stops it', () => {
    const delay = (stack: typeof defaults) =>
      resourcesOfType(stack.template, 'AWS::ElasticLoadBalancingV2::TargetGroup')[0][1].Properties.TargetGroupAttributes.find(
        (attribute: any) => attribute.Key === 'deregistration_delay.timeout_seconds',
      ).Value;
    assert.equal(delay(defaults), '60');
    assert.equal(delay(synth({ originReadTimeoutSeconds: '90' })), '90');
    // Never shorter than the drain after SIGTERM, however short CloudFront's wait.
    assert.equal(delay(synth({ originReadTimeoutSeconds: '2' })), String(SHUTDOWN_DRAIN_SECONDS));
  });
});

describe('CloudFront', () => {
  const distribution = () => resourcesOfType(defaults.template, 'AWS::CloudFront::Distribution')[0][1].Properties.DistributionConfig;

  it('serves HTTPS only, caching static files, thumbnails and public pages and nothing else', () => {
    const config = distribution();
    assert.equal(config.DefaultCacheBehavior.ViewerProtocolPolicy, 'redirect-to-https');
    // The managed CachingDisabled policy and AllViewerExceptHostHeader origin request policy.
    assert.equal(config.DefaultCacheBehavior.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad');
    assert.equal(config.DefaultCacheBehavior.OriginRequestPolicyId, 'b689b0a8-53d0-40ab-baf2-68738e2966ac');
    const paths = config.CacheBehaviors.map((behavior: any) => behavior.PathPattern).sort();
    assert.deepEqual(paths, ['/images/*/thumbnail', '/p/*', '/servers/*', '/static/*']);
    // Public pages: the managed UseOriginCacheControlHeaders-QueryStrings policy, no cookie
    // or viewer header forwarded (no origin request policy), so no session can shape them.
    for (const path of ['/p/*', '/servers/*']) {
      const behavior = config.CacheBehaviors.find((candidate: any) => candidate.PathPattern === path);
      assert.equal(behavior.CachePolicyId, '4cc15a8a-d715-48a4-82b8-cc0b614638fe', path);
      assert.equal(behavior.OriginRequestPolicyId, undefined, path);
    }
    for (const behavior of config.CacheBehaviors) {
      assert.equal(behavior.ViewerProtocolPolicy, 'redirect-to-https');
      assert.notEqual(behavior.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', `${behavior.PathPattern} is cached`);
      assert.ok(behavior.ResponseHeadersPolicyId, `${behavior.PathPattern} has the security headers`);
    }
    assert.ok(config.DefaultCacheBehavior.ResponseHeadersPolicyId);
  });

  it('keys cached thumbnails by cookie and honours the origin’s Cache-Control: private', () => {
    template.hasResourceProperties('AWS::CloudFront::CachePolicy', {
      CachePolicyConfig: Match.objectLike({
        MinTTL: 0,
        DefaultTTL: 0,
        ParametersInCacheKeyAndForwardedToOrigin: Match.objectLike({ CookiesConfig: { CookieBehavior: 'all' } }),
      }),
    });
  });

  it('adds the security headers', () => {
    template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', {
      ResponseHeadersPolicyConfig: Match.objectLike({
        SecurityHeadersConfig: Match.objectLike({
          StrictTransportSecurity: Match.objectLike({ AccessControlMaxAgeSec: 31536000, Override: true }),
          ContentTypeOptions: { Override: true },
          FrameOptions: { FrameOption: 'DENY', Override: true },
          ReferrerPolicy: Match.objectLike({ ReferrerPolicy: 'strict-origin-when-cross-origin' }),
          ContentSecurityPolicy: Match.objectLike({ Override: true }),
        }),
      }),
    });
  });

  it('uses the custom domain, its certificate, TLS 1.2 and the web ACL when given', () => {
    Template.fromJSON(everything.template).hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({
        Aliases: ['atelier.example.com'],
        ViewerCertificate: Match.objectLike({ MinimumProtocolVersion: 'TLSv1.2_2021', SslSupportMethod: 'sni-only' }),
        WebACLId: 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/atelier/abcd',
      }),
    });
  });
});

describe('the services', () => {
  it('roll back failed deployments', () => {
    assertCircuitBreakers(defaults.template);
  });

  it('get secrets from Secrets Manager, never as plain environment', () => {
    assertSecretsNotInEnvironment(defaults.template);
    assertSecretsNotInEnvironment(everything.template);
  });

  it('log to CloudWatch with a retention', () => {
    assertLogRetention(defaults.template, 30);
    for (const container of taskDefinition(defaults, '/Task/').Properties.ContainerDefinitions) {
      assert.equal(container.LogConfiguration.LogDriver, 'awslogs', container.Name);
      assert.deepEqual(container.LogConfiguration.Options['awslogs-group'], { Ref: logicalId(defaults, 'AWS::Logs::LogGroup', '/Logs/') }, container.Name);
    }
  });

  it('run the web app and the bot in every task with the settings shared/src/config.rs reads', () => {
    const env = environmentOf(taskDefinition(defaults, '/Task/'));
    assert.equal(env.ATELIER_BIND, '0.0.0.0:8080');
    assert.equal(env.ATELIER_ENGINE, 'bedrock');
    assert.match(JSON.stringify(env.ATELIER_STORE), /s3:\/\//);
    assert.match(JSON.stringify(env.ATELIER_PUBLIC_URL), /https:\/\//);
    // The name CloudFront addresses the origin by: the load balancer's own DNS name.
    assert.match(JSON.stringify(env.ATELIER_ALLOWED_HOSTS), /LoadBalancer.*DNSName/);
    assert.match(JSON.stringify(env.ATELIER_OIDC_ISSUER), /https:\/\/cognito-idp\.us-east-1\.amazonaws\.com\//);
    for (const name of ['ATELIER_OIDC_CLIENT_ID', 'ATELIER_COGNITO_USER_POOL_ID', 'ATELIER_CHAT_MODEL', 'ATELIER_CLASSIFIER_MODEL', 'ATELIER_GUARDRAIL_ID', 'ATELIER_GUARDRAIL_VERSION']) {
      assert.ok(env[name], name);
    }
    assert.equal(env.ATELIER_DISCORD_TOKEN, undefined, 'the token is a secret, not environment');
    assert.equal(env.ATELIER_DISCORD_MESSAGE_CONTENT, 'false');
    const container = taskDefinition(defaults, '/Task/').Properties.ContainerDefinitions[0];
    assert.deepEqual(
      container.Secrets.map((secret: any) => secret.Name).sort(),
      ['ATELIER_DISCORD_TOKEN', 'ATELIER_OIDC_CLIENT_SECRET', 'ATELIER_SESSION_SECRET'],
      'every task has the bot token',
    );
    const token = container.Secrets.find((secret: any) => secret.Name === 'ATELIER_DISCORD_TOKEN');
    assert.match(JSON.stringify(token.ValueFrom), /"DiscordToken/, 'the token comes from the DiscordToken secret');
    assert.equal(container.ReadonlyRootFilesystem, true);
    assert.deepEqual(container.Command, ['serve']);
    assert.equal(environmentOf(taskDefinition(everything, '/Task/')).ATELIER_DISCORD_APPLICATION_ID, '123456789012345678');
  });

  it('run without the bot in any task when discordBot is off', () => {
    const off = synth({ discordBot: false });
    const container = taskDefinition(off, '/Task/').Properties.ContainerDefinitions[0];
    assert.deepEqual(container.Secrets.map((secret: any) => secret.Name).sort(), ['ATELIER_OIDC_CLIENT_SECRET', 'ATELIER_SESSION_SECRET']);
    assert.equal(environmentOf(taskDefinition(off, '/Task/')).ATELIER_DISCORD_MESSAGE_CONTENT, undefined);
    assert.equal(off.template.Outputs.RegisterCommandsCommand, undefined, 'no command registration without the token');
    assert.equal(resourcesOfType(off.template, 'AWS::ECS::Service').length, 1);
  });

  it('serve /metrics on a port of their own that neither the load balancer nor CloudFront reaches, and log JSON', () => {
    for (const part of ['/Task/']) {
      const container = taskDefinition(defaults, part).Properties.ContainerDefinitions[0];
      const env = environmentOf(taskDefinition(defaults, part));
      assert.equal(env.ATELIER_METRICS_ADDRESS, `0.0.0.0:${METRICS_PORT}`, part);
      assert.equal(env.ATELIER_LOG_FORMAT, 'json', part);
      // The web app's port first: the load balancer's target group takes the first mapping.
      assert.deepEqual(
        container.PortMappings.map((mapping: any) => [mapping.ContainerPort, mapping.Name]),
        [[8080, 'http'], [METRICS_PORT, 'metrics']],
        part,
      );
    }
    for (const stack of [defaults, everything]) {
      // The load balancer sends to the web app's port only, and nothing lets anyone in on the metrics port.
      for (const [, service] of resourcesOfType(stack.template, 'AWS::ECS::Service')) {
        for (const balanced of service.Properties.LoadBalancers ?? []) assert.equal(balanced.ContainerPort, 8080);
      }
      for (const [, group] of resourcesOfType(stack.template, 'AWS::ElasticLoadBalancingV2::TargetGroup')) {
        assert.equal(group.Properties.Port, 8080);
      }
      const inline = resourcesOfType(stack.template, 'AWS::EC2::SecurityGroup').flatMap(([, group]) => [
        ...(group.Properties?.SecurityGroupIngress ?? []),
        ...(group.Properties?.SecurityGroupEgress ?? []),
      ]);
      const standalone = [
        ...resourcesOfType(stack.template, 'AWS::EC2::SecurityGroupIngress'),
        ...resourcesOfType(stack.template, 'AWS::EC2::SecurityGroupEgress'),
      ].map(([, rule]) => rule.Properties);
      for (const rule of [...inline, ...standalone]) {
        const covers = rule.IpProtocol === '-1' || (rule.FromPort <= METRICS_PORT && METRICS_PORT <= rule.ToPort);
        assert.ok(!covers, `no rule opens the metrics port: ${JSON.stringify(rule)}`);
      }
    }
  });

  it('are one service behind the load balancer, whose deployments start new tasks before stopping old ones', () => {
    const services = resourcesOfType(defaults.template, 'AWS::ECS::Service');
    assert.equal(services.length, 1, 'no separate bot service');
    const service = services[0][1];
    assert.equal(service.Properties.DesiredCount, 2);
    assert.equal(service.Properties.DeploymentConfiguration.MinimumHealthyPercent, 100);
    assert.equal(service.Properties.DeploymentConfiguration.MaximumPercent, 200);
    assert.deepEqual(service.Properties.LoadBalancers.map((balanced: any) => balanced.ContainerPort), [8080]);
    assert.equal(resourcesOfType(defaults.template, 'AWS::ECS::TaskDefinition').length, 1, 'one task definition');
  });

  it('stop gracefully within the container’s stopTimeout', () => {
    assertGracefulStop(defaults.template, STOP_MARGIN_SECONDS);
    assertGracefulStop(everything.template, STOP_MARGIN_SECONDS);
    const container = taskDefinition(defaults, '/Task/').Properties.ContainerDefinitions[0];
    const env = environmentOf(taskDefinition(defaults, '/Task/'));
    assert.equal(env.ATELIER_SHUTDOWN_DRAIN_SECONDS, '5');
    assert.equal(env.ATELIER_SHUTDOWN_GRACE_SECONDS, '60');
    assert.equal(container.StopTimeout, 80);
    const longest = synth({ shutdownGraceSeconds: '100' });
    assert.equal(taskDefinition(longest, '/Task/').Properties.ContainerDefinitions[0].StopTimeout, 120);
    assertGracefulStop(longest.template, STOP_MARGIN_SECONDS);
  });

  it('keep the spool on a writable volume of the task, at the path the image prepares', () => {
    assertSpoolWritable(defaults.template);
    assertSpoolWritable(everything.template);
    const definition = taskDefinition(defaults, '/Task/').Properties;
    assert.equal(environmentOf(taskDefinition(defaults, '/Task/')).ATELIER_SPOOL_DIR, SPOOL_DIR);
    assert.deepEqual(definition.ContainerDefinitions[0].MountPoints, [{ ContainerPath: SPOOL_DIR, ReadOnly: false, SourceVolume: 'spool' }]);
    // A bind mount: no host path, no Docker or EFS configuration (Fargate puts it on the task's ephemeral storage).
    assert.deepEqual(definition.Volumes, [{ Name: 'spool' }]);
  });

  it('share the account’s Bedrock image concurrency between the most tasks the service runs', () => {
    const jobs = (stack: typeof defaults) => environmentOf(taskDefinition(stack, '/Task/')).ATELIER_MAX_RUNNING_JOBS;
    assert.equal(jobs(defaults), '4', '24 at once over at most 6 tasks');
    assert.equal(jobs(synth({ bedrockImageConcurrency: '10', maxCount: '3' })), '3', 'rounded down, never over the quota');
    assert.equal(jobs(synth({ bedrockImageConcurrency: '2', maxCount: '6' })), '1', 'at least one');
    assert.equal(runningJobsPerTask(100, 7), 14);
  });

  it('scale the tasks on CPU and on requests, from desiredCount to maxCount', () => {
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 6 });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
        TargetValue: 60,
      }),
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        PredefinedMetricSpecification: Match.objectLike({ PredefinedMetricType: 'ALBRequestCountPerTarget' }),
        TargetValue: 200,
      }),
    });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '1024', Memory: '2048' });
    const small = Template.fromJSON(synth({ desiredCount: '1', maxCount: '3', cpu: '512', memoryMiB: '1024' }).template);
    small.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 1, MaxCapacity: 3 });
    small.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '512', Memory: '1024' });
  });

  it('pull the tagged image from the ECR repository', () => {
    const web = taskDefinition(defaults, '/Task/').Properties.ContainerDefinitions[0];
    assert.match(JSON.stringify(web.Image), /123456789012\.dkr\.ecr\.us-east-1\..*\/atelier:test/);
  });
});

describe('sign-in', () => {
  it('is a Cognito pool with email sign-in, optional MFA and the Discord id attribute', () => {
    template.hasResourceProperties('AWS::Cognito::UserPool', {
      UsernameAttributes: ['email'],
      MfaConfiguration: 'OPTIONAL',
      EnabledMfas: ['SOFTWARE_TOKEN_MFA'],
      Schema: Match.arrayWith([Match.objectLike({ Name: 'discord_id', AttributeDataType: 'String', Mutable: true })]),
    });
  });

  it('has an app client for the code flow, with the callback and sign-out URLs of the site', () => {
    template.hasResourceProperties('AWS::Cognito::UserPoolClient', {
      AllowedOAuthFlows: ['code'],
      AllowedOAuthFlowsUserPoolClient: true,
      GenerateSecret: true,
      CallbackURLs: [{ 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [Match.anyValue(), 'DomainName'] }, '/auth/callback']] }],
      LogoutURLs: [{ 'Fn::Join': ['', ['https://', { 'Fn::GetAtt': [Match.anyValue(), 'DomainName'] }, '/']] }],
    });
    Template.fromJSON(everything.template).hasResourceProperties('AWS::Cognito::UserPoolClient', {
      CallbackURLs: ['https://atelier.example.com/auth/callback'],
      LogoutURLs: ['https://atelier.example.com/'],
    });
  });

  it('does not let users write their own custom:discord_id', () => {
    // With Discord sign-in the client also writes preferred_username, which Cognito updates from
    // the Discord username at each sign-in (mapped attributes must be writable).
    const client = resourcesOfType(defaults.template, 'AWS::Cognito::UserPoolClient')[0][1];
    assert.deepEqual(client.Properties.WriteAttributes, ['email', 'preferred_username']);
    assert.ok(client.Properties.ReadAttributes.includes('custom:discord_id'));
    const plain = resourcesOfType(withoutDiscord.template, 'AWS::Cognito::UserPoolClient')[0][1];
    assert.deepEqual(plain.Properties.WriteAttributes, ['email']);
    assert.ok(plain.Properties.ReadAttributes.includes('custom:discord_id'));
  });

  it('has a managed login domain with a style', () => {
    template.hasResourceProperties('AWS::Cognito::UserPoolDomain', { Domain: 'atelier-123456789012', ManagedLoginVersion: 2 });
    template.resourceCountIs('AWS::Cognito::ManagedLoginBranding', 1);
  });
});

describe('sign in with Discord', () => {
  const provider = (stack: typeof defaults) => {
    const found = resourcesOfType(stack.template, 'AWS::Cognito::UserPoolIdentityProvider');
    assert.equal(found.length, 1, 'one identity provider');
    return found[0];
  };
  const client = (stack: typeof defaults) => resourcesOfType(stack.template, 'AWS::Cognito::UserPoolClient')[0][1];

  it('federates Discord as an OIDC provider named Discord, with explicit endpoints, the scopes and the attribute mapping', () => {
    const [, discord] = provider(defaults);
    assert.equal(DISCORD_IDENTITY_PROVIDER, 'Discord', 'the name the web app looks for in the identities claim');
    assert.equal(discord.Properties.ProviderType, 'OIDC');
    assert.equal(discord.Properties.ProviderName, 'Discord');
    assert.deepEqual(discord.Properties.UserPoolId, { Ref: logicalId(defaults, 'AWS::Cognito::UserPool', '/Users/') });
    assert.deepEqual(discord.Properties.ProviderDetails, {
      client_id: '123456789012345678',
      client_secret: `{{resolve:secretsmanager:${DISCORD_CLIENT_SECRET_NAME}:SecretString:::}}`,
      authorize_scopes: 'openid identify email',
      attributes_request_method: 'GET',
      oidc_issuer: 'https://discord.com',
      authorize_url: 'https://discord.com/oauth2/authorize',
      token_url: 'https://discord.com/api/oauth2/token',
      attributes_url: 'https://discord.com/api/users/@me',
      jwks_uri: 'https://discord.com/api/oauth2/keys',
    });
    assert.equal(DISCORD_OIDC.issuer, 'https://discord.com');
    // The Discord id is the ID token's sub, which Cognito keeps in `identities` unmapped.
    assert.deepEqual(discord.Properties.AttributeMapping, { email: 'email', preferred_username: 'username' });
  });

  it('gets the client secret from Secrets Manager at deployment, never as a literal', () => {
    assertIdentityProviderSecretsReferenced(defaults.template);
    assertIdentityProviderSecretsReferenced(everything.template);
    const [, named] = provider(everything);
    assert.equal(
      named.Properties.ProviderDetails.client_secret,
      '{{resolve:secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:atelier/discord-client-secret-AbCdEf:SecretString:::}}',
    );
    // The provider's is the template's only client secret, and its only reference to a secret
    // the stack does not make (the others are the stack's own, by ARN).
    const text = JSON.stringify(defaults.template);
    assert.equal(text.match(/client_secret/g)?.length, 1);
    assert.deepEqual(text.match(/resolve:secretsmanager:[^"]+/g), [`resolve:secretsmanager:${DISCORD_CLIENT_SECRET_NAME}:SecretString:::}}`]);
  });

  it('is offered by the app client beside Cognito’s own sign-in, which CloudFormation creates after the provider', () => {
    const web = client(defaults);
    assert.deepEqual(web.Properties.SupportedIdentityProviders, ['COGNITO', 'Discord']);
    const [providerId] = provider(defaults);
    assert.ok(resourcesOfType(defaults.template, 'AWS::Cognito::UserPoolClient')[0][1].DependsOn?.includes(providerId), 'the client depends on the provider');
    // The Discord username reaches the ID token.
    assert.ok(web.Properties.ReadAttributes.includes('preferred_username'));
    assert.deepEqual(client(everything).Properties.SupportedIdentityProviders, ['COGNITO', 'Discord']);
  });

  it('is absent without discordClientId: no identity provider, and only Cognito’s own sign-in', () => {
    Template.fromJSON(withoutDiscord.template).resourceCountIs('AWS::Cognito::UserPoolIdentityProvider', 0);
    const web = client(withoutDiscord);
    assert.deepEqual(web.Properties.SupportedIdentityProviders, ['COGNITO']);
    assert.equal(web.DependsOn, undefined);
    assert.ok(!web.Properties.ReadAttributes.includes('preferred_username'));
    assert.doesNotMatch(JSON.stringify(withoutDiscord.template), /client_secret|discord-client-secret|discord\.com/);
  });

  it('tells the operator the redirect URL to give Discord, with or without it', () => {
    for (const stack of [defaults, withoutDiscord]) {
      assert.deepEqual(stack.template.Outputs.DiscordSignInRedirectUrl.Value, {
        'Fn::Join': ['', ['https://', { Ref: logicalId(stack, 'AWS::Cognito::UserPoolDomain', '/ManagedLogin/') }, '.auth.us-east-1.amazoncognito.com/oauth2/idpresponse']],
      });
    }
  });
});

describe('the outputs', () => {
  it('give the operator the site, the sign-in ids and the Discord steps', () => {
    const outputs = Object.keys(everything.template.Outputs);
    for (const name of ['SiteUrl', 'UserPoolId', 'UserPoolClientId', 'OidcIssuer', 'DiscordSignInRedirectUrl', 'DiscordTokenSecretArn', 'DiscordInteractionsEndpointUrl', 'DiscordInstallUrl', 'RegisterCommandsCommand', 'RestartServiceCommand']) {
      assert.ok(outputs.includes(name), name);
    }
    // The restart replaces the one service's tasks; the one-off task is of its definition and security group.
    const restart = JSON.stringify(defaults.template.Outputs.RestartServiceCommand.Value);
    const [serviceId] = resourcesOfType(defaults.template, 'AWS::ECS::Service')[0];
    assert.match(restart, new RegExp(`"Fn::GetAtt":\\["${serviceId}","Name"\\]`));
    const register = JSON.stringify(defaults.template.Outputs.RegisterCommandsCommand.Value);
    const [definitionId] = resourcesOfType(defaults.template, 'AWS::ECS::TaskDefinition')[0];
    assert.match(register, new RegExp(`"Ref":"${definitionId}"`));
    assert.match(register, /"Fn::GetAtt":\["ServiceSecurityGroup[0-9A-F]+","GroupId"\]/);
    assert.match(register, /register-commands/);
    assert.equal(everything.template.Outputs.SiteUrl.Value, 'https://atelier.example.com/');
    assert.equal(
      everything.template.Outputs.DiscordInstallUrl.Value,
      'https://discord.com/oauth2/authorize?client_id=123456789012345678&scope=bot+applications.commands&permissions=309237763072',
    );
    assert.equal(DISCORD_BOT_PERMISSIONS, 309237763072n);
  });
});

describe('metrics, alarms and the dashboard', () => {
  const containers = (stack: typeof defaults): any[] => taskDefinition(stack, '/Task/').Properties.ContainerDefinitions;
  const collector = (stack: typeof defaults): any => containers(stack).find((container) => container.Name === COLLECTOR_CONTAINER);
  /** A value of the template as text, each reference written <Ref:logical id>. */
  const text = (value: any): string => {
    if (typeof value === 'string') return value;
    if (value?.Ref !== undefined) return `<Ref:${value.Ref}>`;
    if (value?.['Fn::Join'] !== undefined) return value['Fn::Join'][1].map(text).join(value['Fn::Join'][0]);
    throw new Error(`not text: ${JSON.stringify(value)}`);
  };
  const collectorConfig = (stack: typeof defaults): any => {
    const variable = collector(stack).Environment.find((candidate: any) => candidate.Name === 'AOT_CONFIG_CONTENT');
    return JSON.parse(text(variable.Value));
  };
  const alarms = (stack: typeof defaults): Record<string, any> =>
    Object.fromEntries(resourcesOfType(stack.template, 'AWS::CloudWatch::Alarm').map(([, alarm]) => [alarm.Properties.AlarmName, alarm.Properties]));
  /** The metrics an alarm reads: its own, or those of its metric math. */
  const metricsOf = (alarm: any): { namespace?: string; name?: string; dimensions: Record<string, unknown>; stat?: string; period?: number; expression?: string }[] =>
    alarm.Metrics === undefined
      ? [{ namespace: alarm.Namespace, name: alarm.MetricName, dimensions: Object.fromEntries((alarm.Dimensions ?? []).map((d: any) => [d.Name, d.Value])), stat: alarm.Statistic, period: alarm.Period }]
      : alarm.Metrics.map((query: any) => ({
          namespace: query.MetricStat?.Metric.Namespace,
          name: query.MetricStat?.Metric.MetricName,
          dimensions: Object.fromEntries((query.MetricStat?.Metric.Dimensions ?? []).map((d: any) => [d.Name, d.Value])),
          stat: query.MetricStat?.Stat,
          period: query.MetricStat?.Period ?? query.Period,
          expression: query.Expression,
        }));

  it('run a metrics collector beside the app that cannot stop it: not essential, read-only, limited, restarted when it exits', () => {
    assertSidecarsCannotStopTheApp(defaults.template);
    assertSidecarsCannotStopTheApp(everything.template);
    assert.deepEqual(containers(defaults).map((container) => container.Name), ['atelier', COLLECTOR_CONTAINER], 'the app first: the load balancer takes its port');
    const sidecar = collector(defaults);
    assert.equal(sidecar.Essential, false);
    assert.equal(sidecar.ReadonlyRootFilesystem, true);
    assert.equal(sidecar.Memory, 256);
    assert.equal(sidecar.Cpu, 64);
    assert.deepEqual(sidecar.RestartPolicy, { Enabled: true, RestartAttemptPeriod: 300 });
    assert.deepEqual(sidecar.HealthCheck.Command, ['CMD', '/healthcheck']);
    assert.equal(sidecar.PortMappings, undefined, 'the collector listens on nothing the VPC can reach');
    assert.equal(sidecar.Secrets, undefined);
    // A pinned release of the ADOT collector, never a moving tag.
    assert.equal(sidecar.Image, COLLECTOR_IMAGE);
    assert.match(sidecar.Image, /^public\.ecr\.aws\/aws-observability\/aws-otel-collector:v\d+\.\d+\.\d+$/);
    // The app stops before the collector (ECS stops a container before those it depends on).
    assert.deepEqual(containers(defaults)[0].DependsOn, [{ ContainerName: COLLECTOR_CONTAINER, Condition: 'START' }]);
  });

  it('scrape the app’s metrics port over the task’s loopback every 60 s, keeping only Atelier’s series', () => {
    const config = collectorConfig(defaults);
    const [job] = config.receivers.prometheus.config.scrape_configs;
    assert.deepEqual(job.static_configs, [{ targets: [`127.0.0.1:${METRICS_PORT}`] }]);
    assert.equal(job.scrape_interval, '60s');
    assert.equal(job.metrics_path, '/metrics');
    const keep = new RegExp(`^(?:${job.metric_relabel_configs[0].regex})$`);
    for (const series of [
      'atelier_jobs_finished_total',
      'atelier_jobs_running',
      'atelier_jobs_waiting',
      'atelier_spool_images',
      'atelier_spool_bytes',
      'atelier_store_errors_total',
      'atelier_model_call_duration_seconds_bucket',
      'atelier_model_call_duration_seconds_count',
      'atelier_model_call_duration_seconds_sum',
      'atelier_estimated_spend_usd_total',
      'atelier_discord_rate_limit_wait_seconds_count',
    ]) {
      assert.match(series, keep);
    }
    assert.doesNotMatch('process_cpu_seconds_total', keep);
    // The collector expands ${...} in its configuration: nothing in it may look like that.
    assert.doesNotMatch(text(collector(defaults).Environment[0].Value), /\$/);
    // Counters and histograms become per-minute deltas, first values of new series included.
    assert.deepEqual(config.processors.cumulativetodelta, { initial_value: 'keep' });
    assert.deepEqual(config.service.pipelines.metrics, {
      receivers: ['prometheus'],
      processors: ['resourcedetection', 'cumulativetodelta'],
      exporters: ['awsemf'],
    });
  });

  it('publish them as EMF into the namespace, through a log group of their own, with few dimensions', () => {
    const config = collectorConfig(defaults);
    const emf = config.exporters.awsemf;
    assert.equal(emf.namespace, 'Atelier');
    assert.equal(emf.log_group_name, `<Ref:${logicalId(defaults, 'AWS::Logs::LogGroup', '/Monitoring/MetricsLogs/')}>`);
    assert.equal(emf.dimension_rollup_option, 'NoDimensionRollup');
    const dimensionsOf = (metric: string) =>
      emf.metric_declarations.find((declaration: any) => declaration.metric_name_selectors.some((selector: string) => new RegExp(selector).test(metric)))?.dimensions;
    assert.deepEqual(dimensionsOf('atelier_jobs_finished_total'), [['outcome'], ['model', 'outcome']]);
    assert.deepEqual(dimensionsOf('atelier_model_call_duration_seconds'), [['outcome'], ['operation', 'outcome']]);
    assert.deepEqual(dimensionsOf('atelier_estimated_spend_usd_total'), [[], ['model']]);
    assert.deepEqual(dimensionsOf('atelier_spool_images'), [[]]);
    for (const declaration of emf.metric_declarations) {
      for (const set of declaration.dimensions) assert.ok(set.length <= 2, `few dimensions: ${set}`);
    }
    // A selector matches its own metric only, not a longer name that starts the same.
    assert.equal(dimensionsOf('atelier_jobs_running_total'), undefined);
    assert.equal(metricsNamespace('Atelier'), 'Atelier');
    assert.equal(metricsNamespace('Staging'), 'Atelier/Staging');
  });

  it('give the task role log writes on the metrics log group only, and no CloudWatch API', () => {
    const statements = roleStatements(defaults.template, '/TaskRole/');
    const emf = statements.find((statement) => statement.Sid === 'PublishMetricsAsEmf');
    assert.deepEqual(emf.Action, ['logs:CreateLogStream', 'logs:PutLogEvents']);
    assert.deepEqual(emf.Resource, { 'Fn::GetAtt': [logicalId(defaults, 'AWS::Logs::LogGroup', '/Monitoring/MetricsLogs/'), 'Arn'] });
    const actions = statements.flatMap((statement) => [statement.Action].flat());
    assert.ok(!actions.some((action: string) => action.startsWith('cloudwatch:')), 'EMF needs no cloudwatch:PutMetricData');
    assert.ok(!actions.includes('logs:CreateLogGroup'), 'the stack makes the group');
  });

  it('alarm on target 5xx as a share of requests, and on the load balancer’s own 5xx', () => {
    const rate = alarms(defaults)['Atelier-target-5xx-rate'];
    const metrics = metricsOf(rate);
    assert.match(metrics.find((metric) => metric.expression)!.expression!, /^IF\(requests >= 20, 100 \* FILL\(errors, 0\) \/ requests, 0\)$/);
    assert.deepEqual(
      metrics.filter((metric) => metric.name).map((metric) => [metric.namespace, metric.name, metric.stat, metric.period]).sort(),
      [
        ['AWS/ApplicationELB', 'HTTPCode_Target_5XX_Count', 'Sum', 300],
        ['AWS/ApplicationELB', 'RequestCount', 'Sum', 300],
      ],
    );
    assert.equal(rate.Threshold, ALARM_THRESHOLDS.target5xxPercent);
    assert.equal(rate.ComparisonOperator, 'GreaterThanThreshold');
    const elb = metricsOf(alarms(defaults)['Atelier-load-balancer-5xx'])[0];
    assert.deepEqual([elb.namespace, elb.name, elb.stat], ['AWS/ApplicationELB', 'HTTPCode_ELB_5XX_Count', 'Sum']);
  });

  it('alarm on jobs failing for the operator’s reasons, the spool, busy models, Bedrock throttling and the tasks', () => {
    const all = alarms(defaults);
    const failed = metricsOf(all['Atelier-jobs-failing'])[0];
    assert.deepEqual([failed.namespace, failed.name, failed.dimensions, failed.stat, failed.period], ['Atelier', 'atelier_jobs_finished_total', { outcome: 'failed' }, 'Sum', 900]);
    const spool = all['Atelier-spool-not-draining'];
    assert.deepEqual([spool.Namespace, spool.MetricName, spool.Statistic, spool.Threshold, spool.ComparisonOperator], ['Atelier', 'atelier_spool_images', 'Maximum', 0, 'GreaterThanThreshold']);
    assert.equal(spool.Period * spool.EvaluationPeriods, 15 * 60, 'fifteen minutes');
    assert.equal(spool.DatapointsToAlarm, spool.EvaluationPeriods, 'without a break');
    const busy = metricsOf(all['Atelier-models-busy'])[0];
    assert.deepEqual([busy.namespace, busy.name, busy.dimensions, busy.stat], ['Atelier', 'atelier_model_call_duration_seconds', { outcome: 'busy' }, 'SampleCount']);
    const throttles = metricsOf(all['Atelier-bedrock-throttles'])[0];
    assert.equal(throttles.expression, 'SELECT SUM(InvocationThrottles) FROM SCHEMA("AWS/Bedrock", ModelId)');
    const tasks = metricsOf(all['Atelier-tasks-below-desired']);
    assert.deepEqual(tasks.filter((metric) => metric.name).map((metric) => [metric.namespace, metric.name]).sort(), [
      ['ECS/ContainerInsights', 'DesiredTaskCount'],
      ['ECS/ContainerInsights', 'RunningTaskCount'],
    ]);
    const missing = all['Atelier-metrics-missing'];
    assert.deepEqual([missing.MetricName, missing.Statistic, missing.TreatMissingData], ['atelier_jobs_running', 'SampleCount', 'breaching']);
  });

  it('alarm on the estimated spend of 24 hours over dailySpendAlarmUsd', () => {
    const spend = alarms(defaults)['Atelier-daily-spend'];
    assert.deepEqual([spend.Namespace, spend.MetricName, spend.Statistic, spend.Period, spend.Dimensions], ['Atelier', 'atelier_estimated_spend_usd_total', 'Sum', 86400, undefined]);
    assert.equal(spend.Threshold, 50);
    assert.equal(alarms(synth({ dailySpendAlarmUsd: '120' }))['Atelier-daily-spend'].Threshold, 120);
  });

  it('send every alarm and its return to OK to one topic, and decide about missing data in each', () => {
    const [topicId] = resourcesOfType(defaults.template, 'AWS::SNS::Topic').map(([id]) => id);
    assert.equal(resourcesOfType(defaults.template, 'AWS::SNS::Topic').length, 1);
    const all = Object.entries(alarms(defaults));
    assert.equal(all.length, 9);
    for (const [name, alarm] of all) {
      assert.deepEqual(alarm.AlarmActions, [{ Ref: topicId }], name);
      assert.deepEqual(alarm.OKActions, [{ Ref: topicId }], name);
      assert.ok(['breaching', 'notBreaching', 'ignore', 'missing'].includes(alarm.TreatMissingData), `${name} says what missing data means`);
      assert.ok(alarm.AlarmDescription.includes('infra/README.md'), `${name} points to what to do`);
    }
    // Only this account's alarms publish, over TLS.
    const policy = resourcesOfType(defaults.template, 'AWS::SNS::TopicPolicy')[0][1].Properties.PolicyDocument.Statement;
    const publish = policy.find((statement: any) => statement.Effect === 'Allow');
    assert.deepEqual(publish.Principal, { Service: 'cloudwatch.amazonaws.com' });
    assert.deepEqual(publish.Condition.StringEquals, { 'aws:SourceAccount': '123456789012' });
    assert.ok(policy.some((statement: any) => statement.Effect === 'Deny' && statement.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
    assert.equal(defaults.template.Outputs.AlarmTopicArn.Value.Ref, topicId);
  });

  it('email the alarms to alarmEmail when it is set, and to nobody otherwise', () => {
    assert.equal(resourcesOfType(defaults.template, 'AWS::SNS::Subscription').length, 0);
    const mailed = synth({ alarmEmail: 'ops@example.com' });
    Template.fromJSON(mailed.template).hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });

  it('have a dashboard of the alarms, requests, jobs, model calls and latency, spend, the spool and the tasks', () => {
    const dashboards = resourcesOfType(defaults.template, 'AWS::CloudWatch::Dashboard');
    assert.equal(dashboards.length, 1);
    const body = JSON.stringify(dashboards[0][1].Properties.DashboardBody);
    for (const shown of [
      'HTTPCode_Target_5XX_Count',
      'HTTPCode_ELB_5XX_Count',
      'TargetResponseTime',
      'atelier_jobs_finished_total',
      'atelier_jobs_running',
      'atelier_jobs_waiting',
      'atelier_model_call_duration_seconds',
      'Average',
      'InvocationThrottles',
      'atelier_estimated_spend_usd_total',
      'atelier_spool_images',
      'atelier_store_errors_total',
      'atelier_discord_rate_limit_wait_seconds',
      'RunningTaskCount',
    ]) {
      assert.ok(body.includes(shown), shown);
    }
    assert.match(body, /type\\+":\\+"alarm/, 'an alarm status widget');
    assert.match(body, /PROP\('Dim\.outcome'\)/, 'lines split by a dimension are labelled with its values');
    assert.match(JSON.stringify(defaults.template.Outputs.DashboardUrl.Value), /cloudwatch\/home\?region=us-east-1#dashboards\/dashboard\//);
  });
});

describe('the template', () => {
  it('passes our cfn-guard rules, with defaults, without Discord sign-in and with every option', () => {
    for (const { template: json } of [defaults, withoutDiscord, everything]) {
      const result = runGuard(json);
      assert.equal(result.status, 0, result.output);
    }
  });

  it('needs no Docker and no look-ups to synthesise', () => {
    // No container image assets (fromAsset would need a Docker engine) and no file assets
    // (a Lambda bundle), so `cdk synth` and `cdk deploy` need nothing but the template.
    const text = JSON.stringify(defaults.template);
    assert.doesNotMatch(text, /cdk-hnb659fds-container-assets/);
    assert.equal(resourcesOfType(defaults.template, 'AWS::Lambda::Function').length, 0);
    assert.doesNotMatch(text, /dummy1a|dummy-value/);
  });
});

describe('the settings', () => {
  const read = (context: Record<string, unknown>) => readSettings((key) => ({ ...TEST_CONTEXT, ...context })[key], {});

  it('name the context key and the fix when something is missing or wrong', () => {
    assert.throws(() => read({ imageTag: undefined }), (error: Error) => error instanceof SettingsError && /context imageTag: is not set; pass -c imageTag=/.test(error.message));
    assert.throws(() => read({ account: 'me' }), /context account: is "me"/);
    assert.throws(() => read({ region: 'eu-south-2' }), /context cloudFrontPrefixListId: has no known default in eu-south-2/);
    assert.ok(read({ region: 'eu-south-2', cloudFrontPrefixListId: 'pl-0123abcd' }));
    assert.equal(read({ region: 'us-west-2' }).cloudFrontPrefixListId, 'pl-82a045eb');
    assert.throws(() => read({ originReadTimeoutSeconds: '300' }), /context originReadTimeoutSeconds: is "300"; use a whole number from 1 to 180/);
    assert.throws(() => read({ domainName: 'atelier.example.com' }), /context certificateArn: is needed with the other one/);
    assert.throws(() => read({ logRetentionDays: '31' }), /context logRetentionDays: is 31; use one of/);
    assert.throws(() => read({ desiredCount: '4', maxCount: '2' }), /context maxCount: is 2, below desiredCount/);
    assert.throws(() => read({ vpcId: 'vpc-1' }), /context vpcCidrBlock: is not set but vpcId is/);
    assert.throws(() => read({ shutdownGraceSeconds: '101' }), /context shutdownGraceSeconds: is "101"; use a whole number from 0 to 100/);
    assert.throws(() => read({ bedrockImageConcurrency: '0' }), /context bedrockImageConcurrency: is "0"/);
    assert.throws(() => read({ alarmEmail: 'ops' }), /context alarmEmail: is "ops"; give one email address/);
    assert.throws(() => read({ alarmEmail: 'a@example.com,b@example.com' }), /context alarmEmail: is "a@example.com,b@example.com"/);
    assert.throws(() => read({ dailySpendAlarmUsd: '0' }), /context dailySpendAlarmUsd: is "0"; use a whole number from 1 to 1000000/);
    assert.throws(() => read({ dailySpendAlarmUsd: '12.5' }), /context dailySpendAlarmUsd: is "12.5"/);
    assert.throws(() => read({ discordClientId: 'my-app' }), /context discordClientId: is "my-app"; use the numeric Client ID from OAuth2/);
    assert.throws(() => read({ discordClientId: 123456789012345678 }), /context discordClientId: is the number 123456789012345680; write it as text/);
    assert.throws(() => read({ discordClientSecretName: 'has spaces' }), /context discordClientSecretName: is "has spaces"; give the name of the Secrets Manager secret/);
    assert.throws(() => read({ discordClientSecretName: 'arn:aws:secretsmanager:us-east-1:123:secret:x' }), /context discordClientSecretName: is "arn:aws:secretsmanager/);
    assert.throws(
      () => read({ discordClientId: undefined, discordClientSecretName: 'atelier/discord' }),
      /context discordClientSecretName: is set but discordClientId is not; set discordClientId as well/,
    );
  });

  it('turn Sign in with Discord on with discordClientId, the secret named atelier/discord-client-secret unless told otherwise', () => {
    assert.equal(read({ discordClientId: undefined }).discordSignIn, undefined);
    assert.equal(read({ discordClientId: '' }).discordSignIn, undefined);
    assert.deepEqual(read({ discordClientId: ' 123456789012345678 ' }).discordSignIn, {
      clientId: '123456789012345678',
      clientSecretName: 'atelier/discord-client-secret',
    });
    assert.equal(DISCORD_CLIENT_SECRET_NAME, 'atelier/discord-client-secret');
    assert.equal(read({ discordClientSecretName: 'prod/discord' }).discordSignIn?.clientSecretName, 'prod/discord');
    const arn = 'arn:aws:secretsmanager:eu-west-1:210987654321:secret:shared/discord-AbCdEf';
    assert.equal(read({ discordClientSecretName: arn }).discordSignIn?.clientSecretName, arn);
  });

  it('have no alarm address and a daily spend alarm at 50 US dollars unless told otherwise', () => {
    assert.equal(read({}).alarmEmail, undefined);
    assert.equal(read({}).dailySpendAlarmUsd, 50);
    assert.equal(read({ alarmEmail: ' ops@example.com ' }).alarmEmail, 'ops@example.com');
    assert.equal(read({ dailySpendAlarmUsd: 200 }).dailySpendAlarmUsd, 200);
  });

  it('add the chat, classifier and extra image models to the models the role may call', () => {
    const settings = read({ imageModels: 'mine=amazon.titan-image-generator-v2:0' });
    assert.deepEqual(settings.bedrockModelIds, [
      'amazon.titan-image-generator-v2:0',
      'us.anthropic.claude-haiku-4-5-20251001-v1:0',
      'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
    ]);
  });

  it('refuse an inference profile whose regions are unknown', () => {
    assert.throws(
      () => modelArns(['eu.anthropic.claude-x'], 'aws', 'eu-west-1', '123456789012', { us: ['us-east-1'] }),
      /context inferenceProfileRegions: has no regions for the "eu\." profile/,
    );
    assert.throws(
      () => modelArns(['us.anthropic.claude-x'], 'aws', 'eu-west-1', '123456789012', { us: ['us-east-1'] }),
      /do not start from eu-west-1/,
    );
  });
});
