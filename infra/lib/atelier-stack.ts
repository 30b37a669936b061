// Atelier on AWS: one stack with everything the `atelier` binary needs in production.
//
//   viewer ──HTTPS── CloudFront ──VPC origin (prefix list + secret header)── internal ALB ── service (Fargate, autoscaled)
//   Discord gateway ───────────────────────────────────────────────────────────────────────── every task of the service
//   every task ── Bedrock (the configured models and guardrail only), S3 (the images bucket), Cognito (the pool),
//                 CloudFront (invalidations of this distribution's public pages)
//
// Why one service, each task running the web app and the bot: every connected copy of a bot
// receives every interaction, but each interaction is handled exactly once across replicas.
// The first acknowledgement wins (Discord refuses the others with 40060, and a replica so
// refused drops the interaction quietly), and plain thread messages are claimed by a
// create-only record under `claims/` in the bucket. Quotas, per-person limits, jobs in
// progress and replica heartbeats live in the bucket as well, changed by compare-and-swap,
// so any task serves any request or button, and a task that stops or dies has its jobs
// answered and refunded by another. So the bot scales with the web app on CPU and requests,
// deployments overlap old and new tasks (no gap in either front end), and nothing needs a
// singleton.
//
// Where it stops: every task identifies to the gateway as shard 0 of 1, and one shard holds
// at most 2,500 guilds; past that Discord closes the gateway (4011, sharding required). Then
// each connection must name its own shard of N, so tasks stop being identical copies: the
// bot would move to a service of its own with a fixed number of tasks, each given its shard
// ids (one service per shard group, or ids leased through the store), scaled by guild count
// rather than CPU; the web tasks would run without the token. Interactions, state and claims
// would stay as they are. Every gateway session also counts against Discord's daily
// session-start limit (1,000), which only a crash loop of many tasks comes near.
//
// Every setting the container reads is an `ATELIER_*` variable from shared/src/config.rs;
// the secret ones arrive as ECS secrets from Secrets Manager, never as plain environment.

import { createHash } from 'node:crypto';

import {
  Annotations,
  CfnOutput,
  Duration,
  Fn,
  RemovalPolicy,
  SecretValue,
  Stack,
  type StackProps,
  Tags,
} from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';

import { guardrailArn, modelArns } from './bedrock';
import { LOG_GROUP_KMS_SKIP, type Skip, skipCheckov } from './checkov';
import { metricsNamespace, Monitoring } from './monitoring';
import { SHUTDOWN_DRAIN_SECONDS, STOP_MARGIN_SECONDS, type Settings } from './settings';

/** The port the web app listens on in the container (ATELIER_BIND). */
export const CONTAINER_PORT = 8080;
/**
 * The port `/metrics` is served on in the container (ATELIER_METRICS_ADDRESS): scraped over the
 * task's loopback by the metrics collector beside the app (lib/monitoring.ts), mapped in the
 * task definition for a scraper inside the VPC, never routed by the load balancer or CloudFront,
 * and open to nothing outside the task until a scraper's security group is let in
 * (infra/README.md).
 */
export const METRICS_PORT = 9464;
/**
 * Where the spool lives in the container (ATELIER_SPOOL_DIR): a task-level bind mount, the one
 * writable place on a read-only root filesystem. The Dockerfile declares the same path as a
 * VOLUME, owned by the image's non-root user; Fargate copies that folder, with its owner, into
 * the fresh volume because the paths match (tests/deploy.rs checks that they do).
 */
export const SPOOL_DIR = '/var/lib/atelier/spool';

/**
 * Image jobs one task runs at once (ATELIER_MAX_RUNNING_JOBS): the account's image concurrency
 * shared by the most tasks the service scales to, so that even fully scaled out the service
 * stays within the quota; at least one, or a task could make no images at all.
 */
export function runningJobsPerTask(imageConcurrency: number, maxTasks: number): number {
  return Math.max(1, Math.floor(imageConcurrency / maxTasks));
}

/** The header CloudFront adds to every origin request; the ALB forwards nothing without it. */
export const ORIGIN_VERIFY_HEADER = 'X-Origin-Verify';
/** Where the web app sends people back after sign-in (shared/src/oidc.rs, CALLBACK_PATH). */
export const CALLBACK_PATH = 'auth/callback';

/**
 * The name of the Cognito identity provider for Sign in with Discord. It is part of the
 * contract with the web app: a federated user's Cognito ID token carries an `identities` claim
 * whose entry has `providerName` set to this and `userId` set to the Discord user id (Discord's
 * `sub`), which is how the app knows the Discord account without `/link`. Renaming it breaks
 * that, and replaces the provider (the name is its identity in Cognito), so every Discord user
 * of the pool would come back as a new user.
 */
export const DISCORD_IDENTITY_PROVIDER = 'Discord';
/**
 * Discord's OpenID Connect endpoints, entered explicitly so that Cognito does not depend on
 * discovering them from the issuer. The issuer and the keys that sign its RS256 ID tokens are
 * those of https://discord.com/.well-known/openid-configuration; the authorization and token
 * URLs are the ones Discord documents for OAuth2 (its discovery document lists the
 * authorization URL under /api). User info is the current-user endpoint, whose
 * documented user object has the `username`, `global_name` and `email` the attribute mapping
 * reads; the discovery document names /api/oauth2/userinfo instead, whose claims Discord does
 * not document. The ID token's `sub` is the Discord user id.
 */
export const DISCORD_OIDC = {
  issuer: 'https://discord.com',
  authorization: 'https://discord.com/oauth2/authorize',
  token: 'https://discord.com/api/oauth2/token',
  userInfo: 'https://discord.com/api/users/@me',
  jwksUri: 'https://discord.com/api/oauth2/keys',
  /** `openid` for the ID token, `identify` for the user object, `email` for its address. */
  scopes: ['openid', 'identify', 'email'],
} as const;
/** Where Discord sends people back to Cognito: the path on the managed-login domain. */
export const COGNITO_IDP_RESPONSE_PATH = '/oauth2/idpresponse';

/**
 * Discord permissions the bot asks for when it is invited: view channels, send messages,
 * embed links, attach files, read message history, create public threads and send messages
 * in threads (chat conversations continue in threads).
 */
export const DISCORD_BOT_PERMISSIONS = [1n << 10n, 1n << 11n, 1n << 14n, 1n << 15n, 1n << 16n, 1n << 35n, 1n << 38n].reduce(
  (all, bit) => all | bit,
  0n,
);

export interface AtelierStackProps extends StackProps {
  readonly settings: Settings;
}

export class AtelierStack extends Stack {
  readonly imagesBucket: s3.Bucket;
  readonly logBucket: s3.Bucket;
  readonly taskRole: iam.Role;
  readonly taskPolicy: iam.Policy;
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  readonly service: ecs.FargateService;
  readonly distribution: cloudfront.Distribution;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  /** Sign in with Discord, when `discordClientId` is set. */
  readonly discordProvider?: cognito.UserPoolIdentityProviderOidc;
  readonly monitoring: Monitoring;
  readonly siteUrl: string;
  private readonly zones: string[] | undefined;

  constructor(scope: Construct, id: string, props: AtelierStackProps) {
    super(scope, id, { ...props, env: props.settings.env });
    const settings = props.settings;
    this.zones = settings.existingVpc?.availabilityZones ?? settings.availabilityZones;
    const region = settings.env.region;
    const account = settings.env.account;
    const partition = region.startsWith('cn-') ? 'aws-cn' : region.startsWith('us-gov-') ? 'aws-us-gov' : 'aws';
    Tags.of(this).add('project', 'atelier');

    // ── Network ────────────────────────────────────────────────────────────────────────────
    let vpc: ec2.IVpc;
    if (settings.existingVpc !== undefined) {
      vpc = ec2.Vpc.fromVpcAttributes(this, 'Vpc', settings.existingVpc);
      // The stack adds no routes to an existing VPC, so it needs no route table ids.
      Annotations.of(vpc).acknowledgeWarning('@aws-cdk/aws-ec2:noSubnetRouteTableId', 'no routes are added to an existing VPC');
    } else {
      const flowLogs = new logs.LogGroup(this, 'VpcFlowLogs', {
        retention: settings.logRetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      skipCheckov(flowLogs, LOG_GROUP_KMS_SKIP);
      const created = new ec2.Vpc(this, 'Vpc', {
        maxAzs: 2,
        natGateways: settings.natGateways,
        subnetConfiguration: [
          { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
          { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        ],
        // Restricting the default security group takes a Lambda-backed custom resource, and
        // nothing in this stack uses that group: every network interface has its own.
        restrictDefaultSecurityGroup: false,
        flowLogs: {
          all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs), trafficType: ec2.FlowLogTrafficType.ALL },
        },
        // Image bytes to and from S3 stay off the NAT gateway (and its per-gigabyte charge).
        gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
      });
      vpc = created;
    }

    // ── Storage ────────────────────────────────────────────────────────────────────────────
    this.logBucket = new s3.Bucket(this, 'LogBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // Load balancer access logs and S3 server access logs can only be written with SSE-S3.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [
        { id: 'expire-logs', expiration: Duration.days(90), noncurrentVersionExpiration: Duration.days(7) },
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    skipCheckov(this.logBucket, { id: 'CKV_AWS_18', comment: 'This is the access-log bucket; logging it into itself would loop.' });

    const prefix = settings.storePrefix === undefined ? '' : `${settings.storePrefix}/`;
    const lifecycleRules: s3.LifecycleRule[] = [
      // Uploads that were started and never finished (a task stopped mid-write) cost storage
      // while invisible; S3 drops them after a day.
      { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      // Link tokens (shared/src/accounts.rs) are valid for ten minutes; their records and
      // `.used` markers are spooled state with no use after that.
      {
        id: 'expire-link-tokens',
        prefix: `${prefix}links/tokens/`,
        expiration: Duration.days(1),
        noncurrentVersionExpiration: Duration.days(1),
      },
      // Sign-ins in progress live 15 minutes and web sessions 7 days (shared/src/sessions.rs);
      // the app deletes them when it meets them expired, and these rules catch the rest.
      {
        id: 'expire-sign-ins',
        prefix: `${prefix}sign-ins/`,
        expiration: Duration.days(1),
        noncurrentVersionExpiration: Duration.days(1),
      },
      {
        id: 'expire-sessions',
        prefix: `${prefix}sessions/`,
        expiration: Duration.days(8),
        noncurrentVersionExpiration: Duration.days(1),
      },
      // Claims (shared/src/claims.rs) decide which replica answers a chat message; they
      // matter only while the replicas race for it, seconds, and nothing reads them after.
      {
        id: 'expire-claims',
        prefix: `${prefix}claims/`,
        expiration: Duration.days(1),
        noncurrentVersionExpiration: Duration.days(1),
      },
      // Heartbeats of replicas (shared/src/jobs): a live task rewrites its record every few
      // seconds, so only the records of tasks long gone reach a week. A job whose replica's
      // record has expired is taken over as a dead replica's, so expiring them loses nothing.
      {
        id: 'expire-replica-heartbeats',
        prefix: `${prefix}replicas/`,
        expiration: Duration.days(7),
        noncurrentVersionExpiration: Duration.days(1),
      },
      // Never expired: `jobs/` (a job in progress; its record is how a stopped or dead task's
      // job gets its answer and its refund, however long no replica can take it over) and
      // `users/{owner}/usage.json` (the day's quota and the jobs a person has in progress,
      // kept by compare-and-swap; expiring it would give back spent quota and forget running
      // jobs). The app deletes job records itself when the job ends. Their old versions, one
      // per compare-and-swap, fall to expire-old-versions below.
      // Thumbnails (`users/{owner}/thumbnails/`, small JPEGs shown on every gallery page) stay
      // in S3 Standard; full images, far larger and opened rarely once they are a month old,
      // move to Intelligent-Tiering. S3 lifecycle filters match key prefixes only, so the
      // size threshold is what tells the two apart (a thumbnail is a few kilobytes, and
      // Intelligent-Tiering does not tier objects under 128 KiB anyway).
      {
        id: 'full-images-to-intelligent-tiering',
        prefix: `${prefix}users/`,
        objectSizeGreaterThan: 128 * 1024,
        transitions: [{ storageClass: s3.StorageClass.INTELLIGENT_TIERING, transitionAfter: Duration.days(30) }],
      },
      // Deleting an image leaves a noncurrent version (versioning is the undo for mistakes
      // and for a compromised task); it is gone for good after 30 days.
      { id: 'expire-old-versions', noncurrentVersionExpiration: Duration.days(30), expiredObjectDeleteMarker: true },
    ];
    this.imagesBucket = new s3.Bucket(this, 'Images', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.logBucket,
      serverAccessLogsPrefix: 'images-bucket/',
      lifecycleRules,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CDK writes the size as a number; CloudFormation's schema has it as text.
    // Found by its id, so adding or reordering rules cannot move the override onto another rule.
    const tieringIndex = lifecycleRules.findIndex((rule) => rule.id === 'full-images-to-intelligent-tiering');
    (this.imagesBucket.node.defaultChild as s3.CfnBucket).addPropertyOverride(
      `LifecycleConfiguration.Rules.${tieringIndex}.ObjectSizeGreaterThan`,
      String(128 * 1024),
    );
    const storeUrl = `s3://${this.imagesBucket.bucketName}${settings.storePrefix === undefined ? '' : `/${settings.storePrefix}`}`;

    // ── Secrets ────────────────────────────────────────────────────────────────────────────
    const secretKmsSkip: Skip = {
      id: 'CKV_AWS_149',
      comment: 'Encrypted with the account key for Secrets Manager; access is bounded by the execution roles, which read exactly these secrets.',
    };
    const discordToken = new secretsmanager.Secret(this, 'DiscordToken', {
      description: 'Atelier: the Discord bot token (ATELIER_DISCORD_TOKEN). Put the real token in with put-secret-value, then run the RestartServiceCommand output.',
      // A random placeholder until the operator stores the token: the bot in each task logs
      // that Discord refused it and stays off, and the web app is unaffected.
      generateSecretString: { passwordLength: 32, excludePunctuation: true },
    });
    skipCheckov(discordToken, secretKmsSkip);
    const originVerify = new secretsmanager.Secret(this, 'OriginVerify', {
      description: `Atelier: the ${ORIGIN_VERIFY_HEADER} header CloudFront sends, without which the load balancer answers 403.`,
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    skipCheckov(originVerify, secretKmsSkip);

    // ── Load balancer: internal, reached by CloudFront through a VPC origin ───────────────
    // The load balancer has no public address: it sits in the private subnets, and CloudFront
    // reaches it through a VPC origin (below), from network interfaces CloudFront places in
    // this VPC, over AWS's own network. Nobody on the internet can send it anything, so
    // session cookies, tokens and the origin header never cross the internet in clear even
    // when CloudFront talks HTTP to it. With `originCertificateArn` the listener is HTTPS all
    // the same, for those who want TLS inside the VPC as well.
    const originHttps = settings.originCertificateArn !== undefined;
    const listenerPort = originHttps ? 443 : 80;
    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc,
      description: 'Atelier load balancer: CloudFront origin-facing addresses only',
      allowAllOutbound: false,
    });
    // Out only to the tasks' port inside the VPC. Declared inline on purpose: CDK writes the
    // load balancer-to-task rule as a separate resource, and a group whose template lists no
    // egress of its own keeps EC2's default allow-all egress.
    this.loadBalancerSecurityGroup.addEgressRule(
      ec2.Peer.ipv4(vpc.vpcCidrBlock),
      ec2.Port.tcp(CONTAINER_PORT),
      'To the tasks in this VPC only',
    );
    // Only CloudFront, even from inside the VPC: the tasks and anything else in the VPC are
    // not let in. AWS's instructions for VPC origins have the origin's group admit CloudFront's
    // origin-facing managed prefix list, as here. CloudFront also makes a security group of its
    // own in the VPC for its network interfaces, "CloudFront-VPCOrigins-Service-SG", but it is
    // CloudFront's, made with the first VPC origin, and CloudFormation does not return its id:
    // admitting it by id would take a look-up or a Lambda-backed custom resource, and this
    // stack uses neither.
    // One rule: the prefix list counts as its maximum size (about 55 entries) against the
    // group's rule quota, so a second port would not fit in the default quota of 60.
    this.loadBalancerSecurityGroup.addIngressRule(
      ec2.Peer.prefixList(settings.cloudFrontPrefixListId),
      ec2.Port.tcp(listenerPort),
      'From CloudFront origin-facing servers only (managed prefix list)',
    );
    // A VPC origin needs the VPC to have an internet gateway, though it routes nothing through
    // it: the VPC this stack makes has one for its public subnets (the NAT gateway's), and an
    // existing VPC needs one too (infra/README.md).
    const loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: false,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroup: this.loadBalancerSecurityGroup,
      dropInvalidHeaderFields: true,
      deletionProtection: settings.deletionProtection,
      // Generating an image takes seconds to a minute; the ALB waits longer than CloudFront.
      idleTimeout: Duration.seconds(settings.originReadTimeoutSeconds + 30),
    });
    loadBalancer.logAccessLogs(this.logBucket, 'load-balancer');

    // Named for the internal load balancer: a stack deployed when the load balancer was
    // internet-facing gets a new load balancer (a scheme cannot change in place), and a target
    // group serves one load balancer at a time, so the new one needs a new target group too.
    const targetGroup = new elbv2.ApplicationTargetGroup(this, 'InternalWebTargets', {
      vpc,
      port: CONTAINER_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targetType: elbv2.TargetType.IP,
      // ECS takes a task out of the target group and waits for it to drain before it sends
      // SIGTERM, so during this delay the task still works normally and requests in flight
      // finish. The longest a request is worth finishing is as long as CloudFront waits for it
      // (a generation from the web page); the load balancer ends the wait early once the
      // task has nothing in flight. Never shorter than the drain after SIGTERM.
      deregistrationDelay: Duration.seconds(Math.max(settings.originReadTimeoutSeconds, SHUTDOWN_DRAIN_SECONDS)),
      // Liveness, not /readyz: /readyz also answers 503 while the bucket cannot be reached,
      // and ECS replaces tasks the load balancer finds unhealthy, so an S3 outage would have
      // every task replaced, each losing the images it holds in its spool for exactly that
      // outage. Draining does not need /readyz here: ECS deregisters the task before SIGTERM.
      healthCheck: {
        path: '/healthz',
        healthyHttpCodes: '200',
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
    });
    // The origin header is kept, though only CloudFront reaches the load balancer: it costs
    // nothing, and it keeps the load balancer answering this distribution only, should another
    // VPC origin in the account (or one shared with it) ever point at it, or the security group
    // be widened later, say for a scraper in the VPC.
    const listener = loadBalancer.addListener('Listener', {
      port: listenerPort,
      protocol: originHttps ? elbv2.ApplicationProtocol.HTTPS : elbv2.ApplicationProtocol.HTTP,
      certificates: originHttps ? [elbv2.ListenerCertificate.fromArn(settings.originCertificateArn!)] : undefined,
      sslPolicy: originHttps ? elbv2.SslPolicy.RECOMMENDED_TLS : undefined,
      // `open: false`: CDK would otherwise add 0.0.0.0/0 to the group.
      open: false,
      defaultAction: elbv2.ListenerAction.fixedResponse(403, { contentType: 'text/plain', messageBody: 'Forbidden' }),
    });
    listener.addAction('FromCloudFront', {
      priority: 1,
      conditions: [elbv2.ListenerCondition.httpHeader(ORIGIN_VERIFY_HEADER, [originVerify.secretValue.unsafeUnwrap()])],
      action: elbv2.ListenerAction.forward([targetGroup]),
    });
    if (!originHttps) {
      skipCheckov(
        listener,
        {
          id: 'CKV_AWS_2',
          comment:
            'HTTP on an internal load balancer with no public address, reached only by CloudFront through a VPC origin inside AWS; viewers always use HTTPS, and originCertificateArn makes this listener HTTPS.',
        },
        { id: 'CKV_AWS_103', comment: 'No TLS on this internal listener without an origin certificate; see CKV_AWS_2.' },
      );
    }

    // ── CloudFront ─────────────────────────────────────────────────────────────────────────
    // One VPC origin (an AWS::CloudFront::VpcOrigin for the load balancer) behind every
    // behaviour. With an origin certificate CloudFront speaks HTTPS only and checks the
    // certificate against originDomainName, which the operator points at the load balancer;
    // without one it speaks HTTP, which stays inside AWS (see the load balancer above).
    const origin = origins.VpcOrigin.withApplicationLoadBalancer(loadBalancer, {
      domainName: originHttps ? settings.originDomainName : undefined,
      protocolPolicy: originHttps ? cloudfront.OriginProtocolPolicy.HTTPS_ONLY : cloudfront.OriginProtocolPolicy.HTTP_ONLY,
      // The listener's port either way.
      httpPort: 80,
      httpsPort: 443,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      customHeaders: { [ORIGIN_VERIFY_HEADER]: originVerify.secretValue.unsafeUnwrap() },
      readTimeout: Duration.seconds(settings.originReadTimeoutSeconds),
      keepaliveTimeout: Duration.seconds(5),
    });

    // Per-user images are `Cache-Control: private` (web/src/routes/gallery.rs), so with a
    // minimum TTL of 0 CloudFront keeps them out of its shared cache and browsers cache them.
    // Every cookie is in the cache key as well, so that even a response the app wrongly marked
    // public could only ever be served back to the same signed-in browser.
    const thumbnailsCache = new cloudfront.CachePolicy(this, 'ThumbnailsCache', {
      comment: 'Atelier thumbnails: cached only as the origin allows, keyed by every cookie',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(0),
      maxTtl: Duration.days(1),
      cookieBehavior: cloudfront.CacheCookieBehavior.all(),
      headerBehavior: cloudfront.CacheHeaderBehavior.none(),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.none(),
    });

    const bucketHosts = `https://${this.imagesBucket.bucketName}.s3.${region}.amazonaws.com https://${this.imagesBucket.bucketName}.s3.amazonaws.com`;
    const securityHeaders = new cloudfront.ResponseHeadersPolicy(this, 'SecurityHeaders', {
      comment: 'Atelier: security headers on every response',
      securityHeadersBehavior: {
        strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, override: true },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN, override: true },
        // Images come from the app itself or, with the S3 store, from short-lived presigned
        // URLs on the bucket's own host. Inline style attributes are used by the pages.
        contentSecurityPolicy: {
          contentSecurityPolicy: [
            "default-src 'self'",
            `img-src 'self' data: blob: ${bucketHosts}`,
            "style-src 'self' 'unsafe-inline'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
          ].join('; '),
          override: true,
        },
      },
      customHeadersBehavior: {
        customHeaders: [{ header: 'Permissions-Policy', value: 'camera=(), microphone=(), geolocation=(), payment=()', override: true }],
      },
    });

    const staticBehavior: cloudfront.BehaviorOptions = {
      origin,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
      cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
      responseHeadersPolicy: securityHeaders,
      compress: true,
    };
    const publicBehavior: cloudfront.BehaviorOptions = {
      origin,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
      cachePolicy: cloudfront.CachePolicy.USE_ORIGIN_CACHE_CONTROL_HEADERS_QUERY_STRINGS,
      responseHeadersPolicy: securityHeaders,
      compress: true,
    };
    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: 'Atelier',
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        // Pages are per user and forms post: nothing is cached, everything is forwarded except
        // Host (the origin's certificate is for the origin name; the app builds its links from
        // ATELIER_PUBLIC_URL, not from Host).
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        responseHeadersPolicy: securityHeaders,
        compress: true,
      },
      additionalBehaviors: {
        // The stylesheet is compiled into the binary and served with max-age=3600.
        '/static/*': staticBehavior,
        // Published images' pages and files and the servers' public galleries are the same for
        // everyone (web/src/routes/public.rs: Cache-Control public, 60 s; no cookie): cached at
        // the edge for as long as the app says, keyed by path and query (a gallery's ?after=),
        // with no cookie or viewer header forwarded, so nobody's session can shape them.
        '/p/*': publicBehavior,
        '/servers/*': publicBehavior,
        '/images/*/thumbnail': {
          origin,
          viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
          allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
          cachePolicy: thumbnailsCache,
          originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
          responseHeadersPolicy: securityHeaders,
          compress: false,
        },
      },
      domainNames: settings.domainName === undefined ? undefined : [settings.domainName],
      certificate:
        settings.certificateArn === undefined ? undefined : acm.Certificate.fromCertificateArn(this, 'Certificate', settings.certificateArn),
      minimumProtocolVersion: settings.certificateArn === undefined ? undefined : cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
      webAclId: settings.webAclArn,
      enableIpv6: true,
    });
    skipCheckov(this.distribution, {
      id: 'CKV_AWS_86',
      comment: "Standard logs need ACLs on the target bucket (ours enforces bucket-owner only); every uncached request is in the load balancer's access logs.",
    });
    if (settings.webAclArn === undefined) {
      skipCheckov(this.distribution, {
        id: 'CKV_AWS_68',
        comment: 'No WAF web ACL by default (a CLOUDFRONT-scope ACL lives in us-east-1 and has a monthly cost); pass -c webAclArn=... to attach one.',
      });
    }
    if (settings.certificateArn === undefined) {
      skipCheckov(this.distribution, {
        id: 'CKV_AWS_174',
        comment: "Without a custom domain CloudFront serves its own *.cloudfront.net certificate, whose minimum protocol AWS sets; with domainName and certificateArn the minimum is TLS 1.2 (TLSv1.2_2021).",
      });
    }

    this.siteUrl = settings.domainName === undefined ? `https://${this.distribution.distributionDomainName}` : `https://${settings.domainName}`;
    const publicUrl = `${this.siteUrl}/`;

    // ── Sign-in: Cognito user pool and managed login ───────────────────────────────────────
    this.userPool = new cognito.UserPool(this, 'Users', {
      userPoolName: 'atelier',
      signInAliases: { email: true },
      signInCaseSensitive: false,
      selfSignUpEnabled: settings.selfSignUp,
      autoVerify: { email: true },
      standardAttributes: { email: { required: true, mutable: true } },
      // Written by the app (AdminUpdateUserAttributes) when a Discord account is linked;
      // the app client below cannot write it, so nobody can claim another's Discord id.
      customAttributes: { discord_id: new cognito.StringAttribute({ minLen: 1, maxLen: 32, mutable: true }) },
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: { minLength: 12, requireLowercase: false, requireUppercase: false, requireDigits: false, requireSymbols: false },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.ESSENTIALS,
      deletionProtection: settings.deletionProtection,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const domain = this.userPool.addDomain('ManagedLogin', {
      cognitoDomain: { domainPrefix: settings.cognitoDomainPrefix },
      managedLoginVersion: cognito.ManagedLoginVersion.NEWER_MANAGED_LOGIN,
    });
    // Sign in with Discord, when discordClientId is set: Cognito federates the Discord
    // application as an OIDC provider and the managed login shows a "Discord" button beside
    // email and password. Without it the stack is as before (no provider, Cognito only), so
    // deployments that do not want Discord sign-in need nothing new.
    if (settings.discordSignIn !== undefined) {
      this.discordProvider = new cognito.UserPoolIdentityProviderOidc(this, 'DiscordSignIn', {
        userPool: this.userPool,
        // The name the web app looks for in the ID token's `identities` claim (see the constant).
        name: DISCORD_IDENTITY_PROVIDER,
        clientId: settings.discordSignIn.clientId,
        // A dynamic reference ({{resolve:secretsmanager:…}}): CloudFormation reads the secret
        // the operator stored when it creates or updates the provider, and the value never
        // appears in the template, the assembly or the stack's parameters.
        clientSecret: SecretValue.secretsManager(settings.discordSignIn.clientSecretName).unsafeUnwrap(),
        issuerUrl: DISCORD_OIDC.issuer,
        endpoints: {
          authorization: DISCORD_OIDC.authorization,
          token: DISCORD_OIDC.token,
          userInfo: DISCORD_OIDC.userInfo,
          jwksUri: DISCORD_OIDC.jwksUri,
        },
        scopes: [...DISCORD_OIDC.scopes],
        // Discord's user endpoint answers GET with the access token as a bearer token.
        attributeRequestMethod: cognito.OidcAttributeRequestMethod.GET,
        // The pool requires an email, so it must be mapped (a Discord account without an email
        // address cannot sign in this way). The Discord id needs no mapping: it is the ID
        // token's `sub`, which Cognito keeps as the identity's user id in `identities`.
        attributeMapping: {
          email: cognito.ProviderAttribute.other('email'),
          preferredUsername: cognito.ProviderAttribute.other('username'),
        },
      });
    }
    this.userPoolClient = this.userPool.addClient('Web', {
      userPoolClientName: 'atelier-web',
      // A confidential client: the code exchange happens on the server, with PKCE as well
      // (the app always sends a code challenge; shared/src/oidc.rs).
      generateSecret: true,
      authFlows: { userSrp: true },
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
        callbackUrls: [`${publicUrl}${CALLBACK_PATH}`],
        logoutUrls: [publicUrl],
      },
      supportedIdentityProviders: [
        cognito.UserPoolClientIdentityProvider.COGNITO,
        ...(this.discordProvider === undefined ? [] : [cognito.UserPoolClientIdentityProvider.custom(DISCORD_IDENTITY_PROVIDER)]),
      ],
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      // With Discord sign-in, preferred_username holds the Discord username. The ID token
      // carries only attributes the client may read, and Cognito can only update at each
      // sign-in the mapped attributes the client may write; so the client may write it too,
      // which lets anyone set their own. It is a display name, never an identity: the
      // Discord id comes from `identities` (or custom:discord_id, which nobody can write).
      readAttributes: new cognito.ClientAttributes()
        .withStandardAttributes({ email: true, emailVerified: true, preferredUsername: this.discordProvider !== undefined })
        .withCustomAttributes('discord_id'),
      writeAttributes: new cognito.ClientAttributes().withStandardAttributes({ email: true, preferredUsername: this.discordProvider !== undefined }),
      idTokenValidity: Duration.hours(1),
      accessTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(30),
    });
    // The client names the provider by its name, which is no reference CloudFormation sees;
    // without this it could update the client before the provider exists, and fail.
    if (this.discordProvider !== undefined) this.userPoolClient.node.addDependency(this.discordProvider);
    // Managed login (the newer version) shows its pages only with a style for the client.
    new cognito.CfnManagedLoginBranding(this, 'ManagedLoginBranding', {
      userPoolId: this.userPool.userPoolId,
      clientId: this.userPoolClient.userPoolClientId,
      useCognitoProvidedValues: true,
    });
    const oidcIssuer = `https://cognito-idp.${region}.amazonaws.com/${this.userPool.userPoolId}`;
    // CloudFormation returns the client secret itself (no custom resource needed); it goes
    // straight into Secrets Manager and from there into the tasks.
    const cfnClient = this.userPoolClient.node.defaultChild as cognito.CfnUserPoolClient;
    const oidcClientSecret = new secretsmanager.Secret(this, 'OidcClientSecret', {
      description: 'Atelier: the Cognito app client secret (ATELIER_OIDC_CLIENT_SECRET)',
      secretStringValue: SecretValue.resourceAttribute(cfnClient.attrClientSecret),
    });
    skipCheckov(oidcClientSecret, secretKmsSkip);
    // The key that signs session cookies: one random value shared by every task, so any
    // replica reads a cookie another set, and kept across deployments so people stay signed in.
    const sessionSecret = new secretsmanager.Secret(this, 'SessionSecret', {
      description: 'Atelier: the key that signs web session cookies (ATELIER_SESSION_SECRET)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
    });
    skipCheckov(sessionSecret, secretKmsSkip);

    // ── Bedrock: a guardrail for prompts, unless one is named ─────────────────────────────
    let guardrail: { id: string; version: string; arn: string };
    if (settings.guardrail !== undefined) {
      guardrail = { ...settings.guardrail, arn: guardrailArn(partition, region, account, settings.guardrail.id) };
    } else {
      const contentPolicyConfig: bedrock.CfnGuardrail.ContentPolicyConfigProperty = {
        filtersConfig: [
          { type: 'SEXUAL', inputStrength: 'HIGH', outputStrength: 'HIGH' },
          { type: 'VIOLENCE', inputStrength: 'MEDIUM', outputStrength: 'MEDIUM' },
          { type: 'HATE', inputStrength: 'HIGH', outputStrength: 'HIGH' },
          { type: 'INSULTS', inputStrength: 'MEDIUM', outputStrength: 'MEDIUM' },
          { type: 'MISCONDUCT', inputStrength: 'MEDIUM', outputStrength: 'MEDIUM' },
          { type: 'PROMPT_ATTACK', inputStrength: 'HIGH', outputStrength: 'NONE' },
        ],
      };
      const created = new bedrock.CfnGuardrail(this, 'Guardrail', {
        name: `atelier-prompts-${this.stackName}`.slice(0, 50),
        description: 'Atelier: applied to every prompt before an image is made',
        blockedInputMessaging: 'This prompt was blocked by the content guardrail.',
        blockedOutputsMessaging: 'This answer was blocked by the content guardrail.',
        contentPolicyConfig,
      });
      // A version pins what the tasks use. Its description carries a digest of the filters,
      // so changing them replaces the version resource, which publishes a new version.
      const digest = createHash('sha256').update(JSON.stringify(contentPolicyConfig)).digest('hex').slice(0, 12);
      const version = new bedrock.CfnGuardrailVersion(this, 'GuardrailVersion', {
        guardrailIdentifier: created.attrGuardrailId,
        description: `Atelier prompts guardrail, filters ${digest}`,
      });
      guardrail = { id: created.attrGuardrailId, version: version.attrVersion, arn: created.attrGuardrailArn };
    }

    // ── The task role: exactly what the app calls, on exactly these resources ─────────────
    const models = modelArns(settings.bedrockModelIds, partition, region, account, settings.inferenceProfileRegions);
    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: { ArnLike: { 'aws:SourceArn': `arn:${partition}:ecs:${region}:${account}:*` }, StringEquals: { 'aws:SourceAccount': account } },
      }),
      description: 'Atelier tasks: the configured Bedrock models and guardrail, the images bucket, the user pool, invalidations of the distribution',
    });
    const objectArns = `${this.imagesBucket.bucketArn}/${prefix}*`;
    this.taskPolicy = new iam.Policy(this, 'TaskPolicy', {
      roles: [this.taskRole],
      statements: [
        new iam.PolicyStatement({
          sid: 'InvokeConfiguredModels',
          // Converse calls InvokeModel; ConverseStream calls InvokeModelWithResponseStream.
          actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
          resources: models.invoke,
        }),
        new iam.PolicyStatement({ sid: 'ApplyGuardrail', actions: ['bedrock:ApplyGuardrail'], resources: [guardrail.arn] }),
        new iam.PolicyStatement({
          sid: 'ListImages',
          // HeadBucket (the start-up check) and ListObjectsV2 (galleries) both need ListBucket.
          actions: ['s3:ListBucket'],
          resources: [this.imagesBucket.bucketArn],
          conditions: settings.storePrefix === undefined ? undefined : { StringLike: { 's3:prefix': [`${prefix}*`] } },
        }),
        new iam.PolicyStatement({
          sid: 'ReadWriteImages',
          actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
          resources: [objectArns],
        }),
        new iam.PolicyStatement({
          sid: 'ForgetUnpublishedPages',
          // shared/src/public_cache.rs: when a published image is unpublished or deleted, the
          // app asks this distribution to drop its cached public pages (/p/{id}*, /servers/{guild}*)
          // instead of showing them until their max-age runs out. This distribution only.
          actions: ['cloudfront:CreateInvalidation'],
          resources: [this.distribution.distributionArn],
        }),
        new iam.PolicyStatement({
          sid: 'RecordLinkedDiscordAccounts',
          // shared/src/accounts/directory.rs: set custom:discord_id on link, clear it on unlink,
          // and read whether an account is still enabled (sessions re-check it every 15 minutes).
          actions: ['cognito-idp:AdminUpdateUserAttributes', 'cognito-idp:AdminDeleteUserAttributes', 'cognito-idp:AdminGetUser'],
          resources: [this.userPool.userPoolArn],
        }),
      ],
    });

    // ── Containers ─────────────────────────────────────────────────────────────────────────
    const cluster = new ecs.Cluster(this, 'Cluster', { vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: settings.logRetentionDays, removalPolicy: RemovalPolicy.RETAIN });
    skipCheckov(logGroup, LOG_GROUP_KMS_SKIP);
    const repository = ecr.Repository.fromRepositoryName(this, 'Repository', settings.imageRepository);
    const image = ecs.ContainerImage.fromEcrRepository(repository, settings.imageTag);

    const environment: Record<string, string> = {
      ATELIER_BIND: `0.0.0.0:${CONTAINER_PORT}`,
      ATELIER_PUBLIC_URL: publicUrl,
      // CloudFront addresses the origin by its own name, not the viewer's Host (see the
      // origin request policy): the app answers that name and the public one, nothing else.
      ATELIER_ALLOWED_HOSTS: originHttps ? settings.originDomainName! : loadBalancer.loadBalancerDnsName,
      // The distribution caches the public pages; the app tells it when one stops being public.
      // (The task definition already depends on the distribution, for ATELIER_PUBLIC_URL, and
      // the distribution on nothing of the service's, so this makes no cycle.)
      ATELIER_CLOUDFRONT_DISTRIBUTION_ID: this.distribution.distributionId,
      ATELIER_STORE: storeUrl,
      ATELIER_ENGINE: 'bedrock',
      ATELIER_CHAT_MODEL: settings.chatModel,
      ATELIER_CLASSIFIER_MODEL: settings.classifierModel,
      ATELIER_GUARDRAIL_ID: guardrail.id,
      ATELIER_GUARDRAIL_VERSION: guardrail.version,
      ATELIER_OIDC_ISSUER: oidcIssuer,
      ATELIER_OIDC_CLIENT_ID: this.userPoolClient.userPoolClientId,
      ATELIER_COGNITO_USER_POOL_ID: this.userPool.userPoolId,
      // Prometheus metrics on a port of their own, apart from the public web app.
      ATELIER_METRICS_ADDRESS: `0.0.0.0:${METRICS_PORT}`,
      // One JSON object a line, for CloudWatch Logs Insights (a job's lines share job_id).
      ATELIER_LOG_FORMAT: 'json',
      // Images made while the bucket cannot be reached wait here (the task's own volume).
      ATELIER_SPOOL_DIR: SPOOL_DIR,
      // Graceful stop, inside stopTimeout below.
      ATELIER_SHUTDOWN_DRAIN_SECONDS: String(SHUTDOWN_DRAIN_SECONDS),
      ATELIER_SHUTDOWN_GRACE_SECONDS: String(settings.shutdownGraceSeconds),
      ATELIER_MAX_RUNNING_JOBS: String(runningJobsPerTask(settings.bedrockImageConcurrency, settings.maxCount)),
      AWS_REGION: region,
      RUST_LOG: 'info',
    };
    if (settings.imageModels !== undefined) environment.ATELIER_IMAGE_MODELS = settings.imageModels;
    const secrets: Record<string, ecs.Secret> = {
      ATELIER_OIDC_CLIENT_SECRET: ecs.Secret.fromSecretsManager(oidcClientSecret),
      ATELIER_SESSION_SECRET: ecs.Secret.fromSecretsManager(sessionSecret),
    };
    // The bot runs in every task when the token is there (see the top of this file).
    if (settings.discordBot) {
      secrets.ATELIER_DISCORD_TOKEN = ecs.Secret.fromSecretsManager(discordToken);
      environment.ATELIER_DISCORD_MESSAGE_CONTENT = String(settings.discordMessageContent);
      if (settings.discordApplicationId !== undefined) environment.ATELIER_DISCORD_APPLICATION_ID = settings.discordApplicationId;
    }
    if (settings.bedrockImageConcurrency < settings.maxCount) {
      Annotations.of(this).addWarningV2(
        'atelier:imageConcurrencyBelowTasks',
        `bedrockImageConcurrency (${settings.bedrockImageConcurrency}) is below maxCount (${settings.maxCount}): each task still runs one image job, so up to ${settings.maxCount} may run at once`,
      );
    }

    const taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: settings.cpu,
      memoryLimitMiB: settings.memoryMiB,
      taskRole: this.taskRole,
      runtimePlatform: {
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        cpuArchitecture: settings.cpuArchitecture === 'ARM64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
      },
    });
    // A bind mount on the task's ephemeral storage (20 GiB, shared with the image): it lives
    // as long as the task, so a replaced task's unflushed spool is gone (infra/README.md).
    taskDefinition.addVolume({ name: 'spool' });
    const container = taskDefinition.addContainer('atelier', {
      containerName: 'atelier',
      image,
      command: ['serve'],
      environment,
      secrets,
      // The web app's port first: the load balancer's target group takes the first mapping.
      portMappings: [
        { containerPort: CONTAINER_PORT, name: 'http' },
        { containerPort: METRICS_PORT, name: 'metrics' },
      ],
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: 'atelier' }),
      // Images go to S3; the only place the app writes locally is the spool volume.
      readonlyRootFilesystem: true,
      // SIGTERM to SIGKILL: the drain, the grace for running jobs, then the rest of the stop.
      stopTimeout: Duration.seconds(SHUTDOWN_DRAIN_SECONDS + settings.shutdownGraceSeconds + STOP_MARGIN_SECONDS),
    });
    container.addMountPoints({ sourceVolume: 'spool', containerPath: SPOOL_DIR, readOnly: false });

    const securityGroup = new ec2.SecurityGroup(this, 'ServiceSecurityGroup', {
      vpc,
      description: 'Atelier tasks: from the load balancer only',
      allowAllOutbound: false,
    });
    // Everything the app talks to (Bedrock, S3, Cognito, CloudFront, Secrets Manager, ECR, Discord's
    // REST API and gateway) is HTTPS on 443.
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs and Discord');

    this.service = new ecs.FargateService(this, 'Service', {
      cluster,
      taskDefinition,
      desiredCount: settings.desiredCount,
      // New tasks start before old ones stop: two copies of the bot at once are safe now.
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      securityGroups: [securityGroup],
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      assignPublicIp: false,
      healthCheckGracePeriod: Duration.seconds(60),
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });
    this.service.attachToApplicationTargetGroup(targetGroup);
    const scaling = this.service.autoScaleTaskCount({ minCapacity: settings.desiredCount, maxCapacity: settings.maxCount });
    scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: settings.cpuTargetPercent,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });
    scaling.scaleOnRequestCount('Requests', {
      requestsPerTarget: settings.requestsPerTarget,
      targetGroup,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });

    // ── Metrics, alarms and a dashboard (lib/monitoring.ts) ────────────────────────────────
    // A collector in every task scrapes /metrics over the task's loopback and publishes the
    // series in CloudWatch; the alarms notify one SNS topic (alarmEmail subscribes an address).
    this.monitoring = new Monitoring(this, 'Monitoring', {
      namespace: metricsNamespace(this.stackName),
      alarmEmail: settings.alarmEmail,
      dailySpendAlarmUsd: settings.dailySpendAlarmUsd,
      logRetentionDays: settings.logRetentionDays,
      taskDefinition,
      appContainer: container,
      scrapeTarget: `127.0.0.1:${METRICS_PORT}`,
      taskPolicy: this.taskPolicy,
      containerLogs: logGroup,
      loadBalancer,
      targetGroup,
      service: this.service,
    });

    // ── What the operator needs next ──────────────────────────────────────────────────────
    const privateSubnets = vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnetIds;
    new CfnOutput(this, 'SiteUrl', { value: publicUrl, description: 'Where people open Atelier (ATELIER_PUBLIC_URL)' });
    new CfnOutput(this, 'DistributionDomainName', {
      value: this.distribution.distributionDomainName,
      description: 'Point your domain (context domainName) at this name with a CNAME or alias record',
    });
    new CfnOutput(this, 'LoadBalancerDnsName', {
      value: loadBalancer.loadBalancerDnsName,
      description:
        'The internal load balancer (private addresses only; CloudFront reaches it through its VPC origin). Point originDomainName here when CloudFront talks HTTPS to it',
    });
    new CfnOutput(this, 'ImagesBucketName', { value: this.imagesBucket.bucketName, description: 'ATELIER_STORE' });
    new CfnOutput(this, 'UserPoolId', { value: this.userPool.userPoolId, description: 'ATELIER_COGNITO_USER_POOL_ID' });
    new CfnOutput(this, 'UserPoolClientId', { value: this.userPoolClient.userPoolClientId, description: 'ATELIER_OIDC_CLIENT_ID' });
    new CfnOutput(this, 'OidcIssuer', { value: oidcIssuer, description: 'ATELIER_OIDC_ISSUER' });
    new CfnOutput(this, 'ManagedLoginUrl', { value: domain.baseUrl(), description: 'Cognito managed login (sign-up, sign-in, MFA set-up)' });
    new CfnOutput(this, 'SignInCallbackUrl', { value: `${publicUrl}${CALLBACK_PATH}`, description: 'The app client callback URL' });
    // With or without discordClientId, so that it can go into the Discord application before
    // the deployment that turns Sign in with Discord on.
    new CfnOutput(this, 'DiscordSignInRedirectUrl', {
      value: `${domain.baseUrl()}${COGNITO_IDP_RESPONSE_PATH}`,
      description:
        'Sign in with Discord: add this URL under OAuth2 > Redirects of the Discord application, then deploy with -c discordClientId=<its Client ID>',
    });
    new CfnOutput(this, 'DiscordTokenSecretArn', {
      value: discordToken.secretArn,
      description: 'Store the bot token here: aws secretsmanager put-secret-value --secret-id <this> --secret-string <token>',
    });
    new CfnOutput(this, 'DiscordInteractionsEndpointUrl', {
      value: 'none',
      description: 'Leave "Interactions Endpoint URL" empty in the Discord developer portal: the bot receives interactions over the gateway',
    });
    if (settings.discordApplicationId !== undefined) {
      new CfnOutput(this, 'DiscordInstallUrl', {
        value: `https://discord.com/oauth2/authorize?client_id=${settings.discordApplicationId}&scope=bot+applications.commands&permissions=${DISCORD_BOT_PERMISSIONS}`,
        description: 'Open to add the bot to a server (scopes bot and applications.commands)',
      });
    }
    new CfnOutput(this, 'DashboardUrl', {
      value: `https://${region}.console.${partition === 'aws-cn' ? 'amazonaws.cn' : 'aws.amazon.com'}/cloudwatch/home?region=${region}#dashboards/dashboard/${this.monitoring.dashboard.dashboardName}`,
      description: 'The CloudWatch dashboard: alarms, requests and errors, jobs, model calls, spend, the spool, tasks',
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.monitoring.alarmTopic.topicArn,
      description: 'Every alarm and its return to OK is published here; subscribe with -c alarmEmail=... or aws sns subscribe',
    });
    new CfnOutput(this, 'MetricsLogGroupName', {
      value: this.monitoring.metricsLogGroup.logGroupName,
      description: `The collector's EMF events; the metrics themselves are in CloudWatch namespace ${metricsNamespace(this.stackName)}`,
    });
    new CfnOutput(this, 'RestartServiceCommand', {
      value: `aws ecs update-service --region ${region} --cluster ${cluster.clusterName} --service ${this.service.serviceName} --force-new-deployment`,
      description: 'Replaces every task, new ones first (they read secrets at start): run after storing or changing the Discord token',
    });
    if (settings.discordBot) {
      new CfnOutput(this, 'RegisterCommandsCommand', {
        value: Fn.join('', [
          `aws ecs run-task --region ${region} --cluster ${cluster.clusterName} --launch-type FARGATE --task-definition ${taskDefinition.taskDefinitionArn}`,
          ` --network-configuration "awsvpcConfiguration={subnets=[${Fn.join(',', privateSubnets)}],securityGroups=[${securityGroup.securityGroupId}],assignPublicIp=DISABLED}"`,
          ` --overrides '{"containerOverrides":[{"name":"atelier","command":["register-commands"]}]}'`,
        ]),
        description: 'Registers the slash commands with Discord (atelier register-commands), in a one-off task of the service’s definition, which has the bot token',
      });
    }
  }

  /**
   * The zones the VPC spans. For a stack with an explicit account and region, CDK would look
   * them up in the account at synth time; instead they are named in the settings, or else
   * left to CloudFormation (`Fn::GetAZs`) as the first two zones of the region.
   */
  override get availabilityZones(): string[] {
    return this.zones ?? [Fn.select(0, Fn.getAzs()), Fn.select(1, Fn.getAzs())];
  }
}
