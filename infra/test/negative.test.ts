// The checks catch what they are for: each test breaks one invariant the way an edit of
// lib/atelier-stack.ts could, synthesises, and shows that our cfn-guard rules and the
// assertion helpers both fail on the result (the "Done when").

import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Duration } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as s3 from 'aws-cdk-lib/aws-s3';

import { runGuard, synth } from './helpers';
import {
  assertBucketsPrivate,
  assertBucketsTlsOnly,
  assertCircuitBreakers,
  assertGracefulStop,
  assertIdentityProviderSecretsReferenced,
  assertLoadBalancerOnlyFromCloudFront,
  assertLoadBalancersInternal,
  assertSecretsNotInEnvironment,
  assertSidecarsCannotStopTheApp,
  assertSpoolWritable,
  assertStateNeverExpires,
  assertTaskRoleLeastPrivilege,
} from './invariants';
import { STOP_MARGIN_SECONDS } from '../lib/settings';

function assertGuardFails(template: Parameters<typeof runGuard>[0], rule: string): void {
  const result = runGuard(template);
  assert.equal(result.status, 19, `cfn-guard fails (exit code 19):\n${result.output}`);
  assert.ok(result.failed.includes(rule), `${rule} fails; failed: ${result.failed.join(', ')}`);
}

describe('the checks fail when', () => {
  it('the unchanged stack passes them (the control)', () => {
    const { template } = synth();
    assert.equal(runGuard(template).status, 0);
    assertBucketsPrivate(template);
    assertTaskRoleLeastPrivilege(template);
    assertGracefulStop(template, STOP_MARGIN_SECONDS);
    assertSpoolWritable(template);
    assertStateNeverExpires(template);
    assertLoadBalancersInternal(template);
    assertSidecarsCannotStopTheApp(template);
    assertIdentityProviderSecretsReferenced(template);
  });

  it("the images bucket's public access block is removed", () => {
    const { template } = synth({}, (stack) => {
      (stack.imagesBucket.node.defaultChild as s3.CfnBucket).addPropertyDeletionOverride('PublicAccessBlockConfiguration');
    });
    assertGuardFails(template, 's3.guard/s3_buckets_block_public_access');
    assert.throws(() => assertBucketsPrivate(template), /blocks public access/);
  });

  it('one public access setting is turned off', () => {
    const { template } = synth({}, (stack) => {
      (stack.imagesBucket.node.defaultChild as s3.CfnBucket).addPropertyOverride('PublicAccessBlockConfiguration.RestrictPublicBuckets', false);
    });
    assertGuardFails(template, 's3.guard/s3_buckets_block_public_access');
    assert.throws(() => assertBucketsPrivate(template), /blocks public access/);
  });

  it("the task role's Bedrock permission is widened to *", () => {
    const { template } = synth({}, (stack) => {
      stack.taskPolicy.addStatements(new iam.PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: ['*'] }));
    });
    assertGuardFails(template, 'iam.guard/bedrock_never_on_wildcard');
    assert.throws(() => assertTaskRoleLeastPrivilege(template), /not allowed on every resource/);
  });

  it('the task role may invalidate every distribution in the account', () => {
    const { template } = synth({}, (stack) => {
      stack.taskPolicy.addStatements(
        new iam.PolicyStatement({ actions: ['cloudfront:CreateInvalidation'], resources: ['arn:aws:cloudfront::123456789012:distribution/*'] }),
      );
    });
    assert.throws(() => assertTaskRoleLeastPrivilege(template), /this stack's distribution/);
  });

  it('the task role may invoke every foundation model through a wildcard ARN', () => {
    const { template } = synth({}, (stack) => {
      stack.taskPolicy.addStatements(
        new iam.PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: ['arn:aws:bedrock:us-east-1::foundation-model/*'] }),
      );
    });
    assertGuardFails(template, 'iam.guard/bedrock_never_on_wildcard');
    assert.throws(() => assertTaskRoleLeastPrivilege(template), /is one Bedrock model/);
  });

  it('the task role is granted bedrock:*', () => {
    const { template } = synth({}, (stack) => {
      stack.taskRole.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['bedrock:*'], resources: ['arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-canvas-v1:0'] }),
      );
    });
    assertGuardFails(template, 'iam.guard/bedrock_never_on_wildcard');
    assert.throws(() => assertTaskRoleLeastPrivilege(template), /named without wildcards/);
  });

  it('the TLS-only statement is missing from a bucket policy', () => {
    const { template } = synth({}, (stack) => {
      // The policy as it would be with enforceSSL left out: only the TLS-version statement.
      const policy = stack.imagesBucket.policy!.node.defaultChild as s3.CfnBucketPolicy;
      const kept = (stack.resolve(policy.policyDocument).Statement as any[]).filter((statement) => !statement.Condition?.Bool);
      policy.addPropertyOverride('PolicyDocument.Statement', kept);
    });
    assertGuardFails(template, 's3.guard/s3_buckets_tls_only');
    assert.throws(() => assertBucketsTlsOnly(template), /denies requests without TLS/);
  });

  it('a secret is passed as a plain environment variable', () => {
    const { template } = synth({}, (stack) => {
      const container = stack.service.taskDefinition.defaultContainer as ecs.ContainerDefinition;
      container.addEnvironment('ATELIER_DISCORD_TOKEN', 'written-into-the-template');
    });
    assertGuardFails(template, 'ecs.guard/secrets_not_in_environment');
    assert.throws(() => assertSecretsNotInEnvironment(template), /is not plain environment/);
  });

  it("the app's container gets no ECS secrets (a sidecar needs none, the app does)", () => {
    const { template } = synth({}, (stack) => {
      (stack.service.taskDefinition.node.defaultChild as ecs.CfnTaskDefinition).addPropertyDeletionOverride('ContainerDefinitions.0.Secrets');
    });
    assertGuardFails(template, 'ecs.guard/secrets_not_in_environment');
    assert.throws(() => assertSecretsNotInEnvironment(template), /both secrets reach a container/);
  });

  it('the load balancer is opened to the internet', () => {
    const { template } = synth({}, (stack) => {
      stack.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'everyone');
    });
    assertGuardFails(template, 'network.guard/no_ingress_from_anywhere');
    assert.throws(() => assertLoadBalancerOnlyFromCloudFront(template, 'pl-3b927c52'), /exactly one ingress rule/);
  });

  it('the load balancer is made internet-facing, with its plain HTTP listener', () => {
    const { template } = synth({}, (stack) => {
      (stack.node.findChild('LoadBalancer').node.defaultChild as elbv2.CfnLoadBalancer).addPropertyOverride('Scheme', 'internet-facing');
    });
    assertGuardFails(template, 'network.guard/internet_facing_load_balancers_serve_no_plain_http');
    assertGuardFails(template, 'network.guard/internet_facing_load_balancers_have_no_plain_http_rules');
    assert.throws(() => assertLoadBalancersInternal(template), /is internal/);
  });

  it("the load balancer's scheme is left out (CloudFormation then makes it internet-facing)", () => {
    const { template } = synth({}, (stack) => {
      (stack.node.findChild('LoadBalancer').node.defaultChild as elbv2.CfnLoadBalancer).addPropertyDeletionOverride('Scheme');
    });
    assertGuardFails(template, 'network.guard/internet_facing_load_balancers_serve_no_plain_http');
    assert.throws(() => assertLoadBalancersInternal(template), /is internal/);
  });

  /** A second load balancer on the internet, as a hurried edit might add one for a quick test. */
  function withPublicLoadBalancer(listen: (loadBalancer: elbv2.ApplicationLoadBalancer) => void) {
    return synth({}, (stack) => {
      const loadBalancer = new elbv2.ApplicationLoadBalancer(stack, 'PublicLoadBalancer', { vpc: stack.service.cluster.vpc, internetFacing: true });
      listen(loadBalancer);
    }).template;
  }

  it('an internet-facing load balancer serves plain HTTP', () => {
    const template = withPublicLoadBalancer((loadBalancer) => {
      loadBalancer.addListener('Http', {
        port: 80,
        open: false,
        defaultAction: elbv2.ListenerAction.fixedResponse(200, { contentType: 'text/plain', messageBody: 'hello' }),
      });
    });
    assertGuardFails(template, 'network.guard/internet_facing_load_balancers_serve_no_plain_http');
    assert.throws(() => assertLoadBalancersInternal(template), /PublicLoadBalancer[0-9A-F]+ is internal/);
  });

  it('an internet-facing load balancer redirects plain HTTP to HTTPS but a listener rule still serves it', () => {
    const template = withPublicLoadBalancer((loadBalancer) => {
      const listener = loadBalancer.addListener('Http', {
        port: 80,
        open: false,
        defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
      });
      listener.addAction('Health', {
        priority: 1,
        conditions: [elbv2.ListenerCondition.pathPatterns(['/healthz'])],
        action: elbv2.ListenerAction.fixedResponse(200, { contentType: 'text/plain', messageBody: 'ok' }),
      });
    });
    assertGuardFails(template, 'network.guard/internet_facing_load_balancers_have_no_plain_http_rules');
    assert.ok(!runGuard(template).failed.includes('network.guard/internet_facing_load_balancers_serve_no_plain_http'), 'the listener itself only redirects');
  });

  it('(the exception) an internet-facing load balancer whose plain HTTP listener only redirects to HTTPS passes the rules', () => {
    const redirectOnly = withPublicLoadBalancer((loadBalancer) => {
      loadBalancer.addListener('Http', {
        port: 80,
        open: false,
        defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
      });
    });
    assert.equal(runGuard(redirectOnly).status, 0, runGuard(redirectOnly).output);
    // A redirect that names no protocol keeps the request's own, plain HTTP.
    const keepsHttp = withPublicLoadBalancer((loadBalancer) => {
      loadBalancer.addListener('Http', { port: 80, open: false, defaultAction: elbv2.ListenerAction.redirect({ host: 'example.com' }) });
    });
    assertGuardFails(keepsHttp, 'network.guard/internet_facing_load_balancers_serve_no_plain_http');
  });

  it("Sign in with Discord's client secret is written into the template", () => {
    const { template } = synth({}, (stack) => {
      (stack.discordProvider!.node.defaultChild as cognito.CfnUserPoolIdentityProvider).addPropertyOverride('ProviderDetails.client_secret', 'pasted-from-the-portal');
    });
    assertGuardFails(template, 'cognito.guard/identity_provider_secrets_are_references');
    assert.throws(() => assertIdentityProviderSecretsReferenced(template), /comes from Secrets Manager/);
  });

  it("Sign in with Discord's client secret is assembled in the template around a reference", () => {
    const { template } = synth({}, (stack) => {
      (stack.discordProvider!.node.defaultChild as cognito.CfnUserPoolIdentityProvider).addPropertyOverride('ProviderDetails.client_secret', {
        'Fn::Join': ['', ['{{resolve:secretsmanager:atelier/discord-client-secret:SecretString:::}}', '-suffix']],
      });
    });
    assertGuardFails(template, 'cognito.guard/identity_provider_secrets_are_references');
    assert.throws(() => assertIdentityProviderSecretsReferenced(template), /is one dynamic reference/);
  });

  it('a service deploys without rollback', () => {
    const { template } = synth({}, (stack) => {
      (stack.service.node.defaultChild as ecs.CfnService).addPropertyOverride('DeploymentConfiguration.DeploymentCircuitBreaker.Rollback', false);
    });
    assertGuardFails(template, 'ecs.guard/services_roll_back_failed_deployments');
    assert.throws(() => assertCircuitBreakers(template), /rolls back/);
  });

  it('the container keeps Fargate’s default 30 seconds to stop', () => {
    const { template } = synth({}, (stack) => {
      (stack.service.taskDefinition.node.defaultChild as ecs.CfnTaskDefinition).addPropertyOverride('ContainerDefinitions.0.StopTimeout', 30);
    });
    assert.throws(() => assertGracefulStop(template, STOP_MARGIN_SECONDS), /covers drain/);
  });

  it('the deregistration delay is shorter than the drain', () => {
    const { template } = synth({}, (stack) => {
      const group = stack.node.findChild('InternalWebTargets').node.defaultChild as elbv2.CfnTargetGroup;
      group.addPropertyOverride('TargetGroupAttributes', [{ Key: 'deregistration_delay.timeout_seconds', Value: '0' }]);
    });
    assert.throws(() => assertGracefulStop(template, STOP_MARGIN_SECONDS), /no shorter than the drain/);
  });

  it('the spool volume is not mounted (the spool would be on the read-only root)', () => {
    const { template } = synth({}, (stack) => {
      (stack.service.taskDefinition.node.defaultChild as ecs.CfnTaskDefinition).addPropertyDeletionOverride('ContainerDefinitions.0.MountPoints');
    });
    assert.throws(() => assertSpoolWritable(template), /a volume is mounted at ATELIER_SPOOL_DIR/);
  });

  it('the metrics collector is made essential (its failure would stop the task)', () => {
    const { template } = synth({}, (stack) => {
      (stack.service.taskDefinition.node.defaultChild as ecs.CfnTaskDefinition).addPropertyOverride('ContainerDefinitions.1.Essential', true);
    });
    assert.throws(() => assertSidecarsCannotStopTheApp(template), /metrics-collector is not essential/);
  });

  it('the metrics collector loses its memory limit', () => {
    const { template } = synth({}, (stack) => {
      (stack.service.taskDefinition.node.defaultChild as ecs.CfnTaskDefinition).addPropertyDeletionOverride('ContainerDefinitions.1.Memory');
    });
    assert.throws(() => assertSidecarsCannotStopTheApp(template), /metrics-collector has a hard memory limit/);
  });

  it('the task role may write to every log group', () => {
    const { template } = synth({}, (stack) => {
      stack.taskPolicy.addStatements(new iam.PolicyStatement({ actions: ['logs:PutLogEvents'], resources: ['arn:aws:logs:us-east-1:123456789012:log-group:*'] }));
    });
    assert.throws(() => assertTaskRoleLeastPrivilege(template), /log writes are on the metrics log group only/);
  });

  it('the task role is given cloudwatch:PutMetricData', () => {
    const { template } = synth({}, (stack) => {
      stack.taskPolicy.addStatements(new iam.PolicyStatement({ actions: ['cloudwatch:PutMetricData'], resources: ['*'] }));
    });
    assert.throws(() => assertTaskRoleLeastPrivilege(template), /not allowed on every resource|no business with cloudwatch/);
  });

  it('a lifecycle rule expires the jobs in progress', () => {
    const { template } = synth({}, (stack) => {
      stack.imagesBucket.addLifecycleRule({ id: 'tidy-jobs', prefix: 'jobs/', expiration: Duration.days(7) });
    });
    assert.throws(() => assertStateNeverExpires(template), /rule tidy-jobs would expire jobs\/0.json/);
  });

  it('a lifecycle rule expires every object, usage ledgers included', () => {
    const { template } = synth({}, (stack) => {
      stack.imagesBucket.addLifecycleRule({ id: 'expire-everything', expiration: Duration.days(365) });
    });
    assert.throws(() => assertStateNeverExpires(template), /rule expire-everything would expire/);
  });
});
