// The stack as synthesised from cdk.json's defaults, and with every option set.

import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Match, Template } from 'aws-cdk-lib/assertions';

import { modelArns } from '../lib/bedrock';
import { DISCORD_BOT_PERMISSIONS, METRICS_PORT, runningJobsPerTask, SPOOL_DIR } from '../lib/atelier-stack';
import { readSettings, SettingsError, SHUTDOWN_DRAIN_SECONDS, STOP_MARGIN_SECONDS } from '../lib/settings';
import { resourcesOfType, runGuard, synth, TEST_CONTEXT } from './helpers';
import {
  assertBucketsPrivate,
  assertBucketsTlsOnly,
  assertCircuitBreakers,
  assertGracefulStop,
  assertLoadBalancerOnlyFromCloudFront,
  assertLoadBalancersInternal,
  assertLogRetention,
  assertSecretsNotInEnvironment,
  assertSpoolWritable,
  assertStateNeverExpires,
  assertTaskRoleLeastPrivilege,
  roleStatements,
} from './invariants';

const defaults = synth();
const template = Template.fromJSON(defaults.template);

/** Every option set: a domain, HTTPS to the origin, a WAF ACL, an existing VPC and guardrail. */
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
  storePrefix: 'atelier',
  imageModels: 'nova=amazon.nova-canvas-v1:0,extra=stability.sd3-5-large-v1:0',
});

function environmentOf(definition: any): Record<string, unknown> {
  return Object.fromEntries(definition.Properties.ContainerDefinitions[0].Environment.map((variable: any) => [variable.Name, variable.Value]));
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

  it('serves HTTPS only, caching static files and thumbnails and nothing else', () => {
    const config = distribution();
    assert.equal(config.DefaultCacheBehavior.ViewerProtocolPolicy, 'redirect-to-https');
    // The managed CachingDisabled policy and AllViewerExceptHostHeader origin request policy.
    assert.equal(config.DefaultCacheBehavior.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad');
    assert.equal(config.DefaultCacheBehavior.OriginRequestPolicyId, 'b689b0a8-53d0-40ab-baf2-68738e2966ac');
    const paths = config.CacheBehaviors.map((behavior: any) => behavior.PathPattern).sort();
    assert.deepEqual(paths, ['/images/*/thumbnail', '/static/*']);
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
    template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      ContainerDefinitions: [Match.objectLike({ LogConfiguration: Match.objectLike({ LogDriver: 'awslogs' }) })],
    });
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
    const client = resourcesOfType(defaults.template, 'AWS::Cognito::UserPoolClient')[0][1];
    assert.deepEqual(client.Properties.WriteAttributes, ['email']);
    assert.ok(client.Properties.ReadAttributes.includes('custom:discord_id'));
  });

  it('has a managed login domain with a style', () => {
    template.hasResourceProperties('AWS::Cognito::UserPoolDomain', { Domain: 'atelier-123456789012', ManagedLoginVersion: 2 });
    template.resourceCountIs('AWS::Cognito::ManagedLoginBranding', 1);
  });
});

describe('the outputs', () => {
  it('give the operator the site, the sign-in ids and the Discord steps', () => {
    const outputs = Object.keys(everything.template.Outputs);
    for (const name of ['SiteUrl', 'UserPoolId', 'UserPoolClientId', 'OidcIssuer', 'DiscordTokenSecretArn', 'DiscordInteractionsEndpointUrl', 'DiscordInstallUrl', 'RegisterCommandsCommand', 'RestartServiceCommand']) {
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

describe('the template', () => {
  it('passes our cfn-guard rules, with defaults and with every option', () => {
    for (const { template: json } of [defaults, everything]) {
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
