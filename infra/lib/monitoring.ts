// What the operator watches: the app's Prometheus metrics in CloudWatch, alarms on the signals
// that need a person, and a dashboard of them.
//
//   atelier container ── GET 127.0.0.1:9464/metrics, every 60 s ── metrics-collector (ADOT, same task)
//   metrics-collector ── EMF log events ── CloudWatch Logs (the metrics log group) ── metrics in the namespace
//   alarms (those metrics, the load balancer's, ECS's, Bedrock's) ── SNS topic ── email (alarmEmail)
//
// Why the AWS Distro for OpenTelemetry collector and not the CloudWatch agent: the agent drops
// Prometheus histograms, and the model-call histogram is where Bedrock's throttling (outcome
// `busy`) and the models' latency are counted. The collector scrapes the app over the task's own
// loopback (every container of a Fargate task shares one network namespace), so no security
// group admits the metrics port, and writes Embedded Metric Format (EMF) events to a log group of
// its own; CloudWatch Logs turns them into metrics. It never calls PutMetricData, so the task role
// gets no CloudWatch permission: only log writes to that one group.
//
// The collector is a sidecar that cannot take the app down: it is not essential (ECS keeps the
// task running when it exits, and restarts it), has a read-only root filesystem, a memory limit of
// its own and a small CPU share. What it costs when it breaks is metrics, which the
// MetricsMissing alarm reports.

import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

import { LOG_GROUP_KMS_SKIP, skipCheckov } from './checkov';

/**
 * The ADOT collector, pinned to a release: a deployment never picks up a new collector by
 * surprise. Upgrading is a change of this line (check the release notes for the prometheus
 * receiver, the cumulativetodelta processor and the awsemf exporter).
 */
export const COLLECTOR_IMAGE = 'public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0';
/** The sidecar's container name. */
export const COLLECTOR_CONTAINER = 'metrics-collector';
/** How often the collector scrapes the app; one data point a minute is CloudWatch's standard resolution. */
export const SCRAPE_INTERVAL_SECONDS = 60;
/** The collector's health endpoint, on the task's loopback only; the image's /healthcheck asks it. */
const COLLECTOR_HEALTH_PORT = 13133;

/**
 * The CloudWatch namespace of the app's metrics: `Atelier` for the stack named Atelier (the
 * default), `Atelier/<stack name>` for any other, so that two stacks in one account and region
 * (say a staging one) never add up into the same metrics.
 */
export function metricsNamespace(stackName: string): string {
  return stackName === 'Atelier' ? 'Atelier' : `Atelier/${stackName}`;
}

/**
 * The app's series that reach CloudWatch, and the dimensions each is published with. Every
 * dimension set is a CloudWatch metric of its own for each combination of values (billed as a
 * custom metric), so the sets are few and small: outcomes and operations are fixed words and
 * models the configured catalogue (shared/src/metrics.rs), and no label names a person. A set
 * without dimensions (`[]`) adds every task and label value together, which is what the alarms
 * watch; there is no task dimension, as tasks come and go with every deployment.
 */
export const PUBLISHED_METRICS: readonly { readonly names: readonly string[]; readonly histogram?: boolean; readonly dimensions: readonly (readonly string[])[] }[] = [
  { names: ['atelier_jobs_finished_total'], dimensions: [['outcome'], ['model', 'outcome']] },
  { names: ['atelier_jobs_running', 'atelier_jobs_waiting', 'atelier_spool_images', 'atelier_spool_bytes'], dimensions: [[]] },
  { names: ['atelier_store_errors_total'], dimensions: [['operation']] },
  { names: ['atelier_model_call_duration_seconds'], histogram: true, dimensions: [['outcome'], ['operation', 'outcome']] },
  { names: ['atelier_estimated_spend_usd_total'], dimensions: [[], ['model']] },
  { names: ['atelier_discord_rate_limit_wait_seconds'], histogram: true, dimensions: [[]] },
];

export interface CollectorConfigOptions {
  /** host:port of the app's metrics listener, seen from inside the task. */
  readonly scrapeTarget: string;
  readonly namespace: string;
  readonly logGroupName: string;
  readonly region: string;
}

/**
 * The collector's configuration (AOT_CONFIG_CONTENT; JSON, which is YAML too). It holds no `$`:
 * the collector expands `${...}` in its configuration, and nothing here is meant to be expanded.
 *
 * - **prometheus**: scrapes the app every minute and keeps only the series above.
 * - **resourcedetection** (ecs): the task's id, from the task metadata endpoint, so that each
 *   task writes its own log stream (`{TaskId}`).
 * - **cumulativetodelta**: Prometheus counters and histograms only grow; CloudWatch wants what
 *   happened in each minute. The awsemf exporter turns counters into deltas itself but sends
 *   histograms' counts and sums as they are, so this processor does it for both. `keep` sends
 *   the first value of a new series as its own delta: the app creates a series when it first
 *   counts something (the first failed job of a model, say), and dropping that first value as a
 *   baseline would lose exactly the rare events the alarms are for. The collector lives and dies
 *   with the task, so its first scrape sees counters near zero; if it restarts inside a running
 *   task, the first minute after carries the task's totals since it started, once.
 * - **awsemf**: one EMF event per label set and minute, with the dimensions of
 *   PUBLISHED_METRICS and no automatic roll-ups. Histograms become statistic sets (count and sum
 *   per minute; Prometheus histograms carry no minimum or maximum, so only SampleCount, Sum and
 *   Average mean anything).
 */
export function collectorConfig(options: CollectorConfigOptions): Record<string, unknown> {
  const series = PUBLISHED_METRICS.flatMap((metric) => metric.names.map((name) => (metric.histogram ? `${name}(_bucket|_sum|_count)` : name)));
  return {
    extensions: { health_check: { endpoint: `127.0.0.1:${COLLECTOR_HEALTH_PORT}` } },
    receivers: {
      prometheus: {
        config: {
          scrape_configs: [
            {
              job_name: 'atelier',
              scrape_interval: `${SCRAPE_INTERVAL_SECONDS}s`,
              scrape_timeout: '10s',
              metrics_path: '/metrics',
              // The app answers in OpenMetrics text and says so; this only covers a missing header.
              fallback_scrape_protocol: 'PrometheusText0.0.4',
              static_configs: [{ targets: [options.scrapeTarget] }],
              // Prometheus anchors the regex at both ends.
              metric_relabel_configs: [{ source_labels: ['__name__'], regex: `(${series.join('|')})`, action: 'keep' }],
            },
          ],
        },
      },
    },
    processors: {
      resourcedetection: { detectors: ['ecs'], timeout: '5s', override: false },
      cumulativetodelta: { initial_value: 'keep' },
    },
    exporters: {
      awsemf: {
        region: options.region,
        namespace: options.namespace,
        log_group_name: options.logGroupName,
        log_stream_name: '{TaskId}',
        dimension_rollup_option: 'NoDimensionRollup',
        metric_declarations: PUBLISHED_METRICS.map((metric) => ({
          dimensions: metric.dimensions.map((set) => [...set]),
          // `\b` rather than an end anchor: a dollar sign would be taken for a variable.
          metric_name_selectors: metric.names.map((name) => `^${name}\\b`),
        })),
      },
    },
    service: {
      extensions: ['health_check'],
      // No listener for the collector's own metrics.
      telemetry: { metrics: { level: 'none' } },
      pipelines: {
        metrics: { receivers: ['prometheus'], processors: ['resourcedetection', 'cumulativetodelta'], exporters: ['awsemf'] },
      },
    },
  };
}

/**
 * The thresholds. Each alarm's description and infra/README.md ("Alarms and dashboard") say what
 * it means and what to do; change a number here and there together.
 */
export const ALARM_THRESHOLDS = {
  /** Target 5xx as a percentage of requests in 5 minutes, counted once there are this many requests. */
  target5xxPercent: 5,
  target5xxMinimumRequests: 20,
  /** 5xx answered by the load balancer itself (no healthy target, a target that hung up) in 5 minutes. */
  loadBalancer5xx: 10,
  /** Jobs failed for the operator's reasons in 15 minutes. */
  failedJobs: 3,
  /** Model calls that ended `busy` (throttled or overloaded after the app's retries) in each of two 5-minute periods. */
  busyModelCalls: 5,
  /** Bedrock's own InvocationThrottles, every model in the region, in each of two 5-minute periods. */
  bedrockThrottles: 20,
  /** Minutes the spool has held images without a break. */
  spoolMinutes: 15,
  /** On average, this many tasks short of the desired count for 15 minutes. */
  missingTasks: 0.5,
} as const;

export interface MonitoringProps {
  readonly namespace: string;
  readonly alarmEmail?: string;
  readonly dailySpendAlarmUsd: number;
  readonly logRetentionDays: number;
  /** The task definition the collector joins, and the app's container in it. */
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly appContainer: ecs.ContainerDefinition;
  /** host:port of the app's metrics listener, seen from inside the task. */
  readonly scrapeTarget: string;
  /** The task policy, which gets the collector's log writes. */
  readonly taskPolicy: iam.Policy;
  /** The containers' log group, for the collector's own log lines. */
  readonly containerLogs: logs.ILogGroup;
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly targetGroup: elbv2.ApplicationTargetGroup;
  readonly service: ecs.FargateService;
}

export class Monitoring extends Construct {
  /** Where every alarm (and its return to OK) is sent. */
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;
  /** Where the collector writes its EMF events (the raw material of the app's metrics). */
  readonly metricsLogGroup: logs.LogGroup;
  readonly collector: ecs.ContainerDefinition;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const namespace = props.namespace;

    // ── The collector ──────────────────────────────────────────────────────────────────────
    // The EMF events are only the carrier: the metrics extracted from them are kept by
    // CloudWatch (15 months) whatever this group's retention.
    this.metricsLogGroup = new logs.LogGroup(this, 'MetricsLogs', {
      retention: props.logRetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    skipCheckov(this.metricsLogGroup, LOG_GROUP_KMS_SKIP);
    props.taskPolicy.addStatements(
      new iam.PolicyStatement({
        sid: 'PublishMetricsAsEmf',
        // The group exists (above), so the collector never needs CreateLogGroup; it makes one
        // stream per task. The app's container shares the task role, so it could write here too.
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.metricsLogGroup.logGroupArn],
      }),
    );
    const config = collectorConfig({
      scrapeTarget: props.scrapeTarget,
      namespace,
      logGroupName: this.metricsLogGroup.logGroupName,
      region: stack.region,
    });
    this.collector = props.taskDefinition.addContainer('metrics-collector', {
      containerName: COLLECTOR_CONTAINER,
      image: ecs.ContainerImage.fromRegistry(COLLECTOR_IMAGE),
      // The task runs (and serves) without it; if it exits, ECS restarts it (below).
      essential: false,
      environment: {
        AOT_CONFIG_CONTENT: stack.toJsonString(config),
        // The Go runtime collects garbage harder before it reaches the container's limit.
        GOMEMLIMIT: '200MiB',
      },
      // The image runs as its own non-root user and writes nothing to disk.
      readonlyRootFilesystem: true,
      // A hard limit, so a collector gone wrong is killed before it starves the app; CPU is a
      // share of the task's, which the app gets the rest of.
      cpu: 64,
      memoryLimitMiB: 256,
      logging: ecs.LogDrivers.awsLogs({ logGroup: props.containerLogs, streamPrefix: COLLECTOR_CONTAINER }),
      // The image's own probe of the health_check extension: its status shows in the console,
      // and, the container not being essential, never decides the task's health.
      healthCheck: {
        command: ['CMD', '/healthcheck'],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(15),
      },
      // Restarted in place when it exits after running 5 minutes; one that fails sooner (a bad
      // configuration) is left stopped rather than restarted in a loop.
      enableRestartPolicy: true,
      restartAttemptPeriod: Duration.seconds(300),
    });
    // Only for the order of stopping: ECS stops a container before those it depends on, so the
    // collector outlives the app's drain and grace, and scrapes the jobs finished in them.
    props.appContainer.addContainerDependencies({ container: this.collector, condition: ecs.ContainerDependencyCondition.START });

    // ── Where alarms go ────────────────────────────────────────────────────────────────────
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `${stack.stackName} alarms`,
      enforceSSL: true,
    });
    skipCheckov(this.alarmTopic, {
      id: 'CKV_AWS_26',
      comment:
        "Alarm notifications carry alarm names and metric values, nothing secret; CloudWatch cannot publish to a topic under the AWS-managed SNS key, and a customer key would cost more than the topic.",
    });
    // CloudWatch alarms of this account publish; nothing else. With a topic policy of its own
    // (enforceSSL) the topic no longer has SNS's default policy, so this is said explicitly.
    this.alarmTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*` },
        },
      }),
    );
    if (props.alarmEmail !== undefined) {
      // SNS mails a confirmation link first; nothing arrives until someone follows it.
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    }
    const notify = new cloudwatchActions.SnsAction(this.alarmTopic);
    const alarm = (id: string, name: string, alarmProps: Omit<cloudwatch.AlarmProps, 'alarmName'>): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, id, { ...alarmProps, alarmName: `${stack.stackName}-${name}` });
      created.addAlarmAction(notify);
      created.addOkAction(notify);
      this.alarms.push(created);
      return created;
    };

    // ── The signals ────────────────────────────────────────────────────────────────────────
    const five = Duration.minutes(5);
    const app = (metricName: string, statistic: string, period: Duration, dimensionsMap?: Record<string, string>) =>
      new cloudwatch.Metric({ namespace, metricName, statistic, period, dimensionsMap });
    const requests = props.targetGroup.metrics.requestCount({ period: five, statistic: cloudwatch.Stats.SUM, label: 'Requests to the tasks' });
    const target5xx = props.targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
      period: five,
      statistic: cloudwatch.Stats.SUM,
      label: '5xx from the tasks',
    });
    const target5xxRate = new cloudwatch.MathExpression({
      // The load balancer publishes the 5xx count only when there are some: missing means none.
      expression: `IF(requests >= ${ALARM_THRESHOLDS.target5xxMinimumRequests}, 100 * FILL(errors, 0) / requests, 0)`,
      usingMetrics: { requests, errors: target5xx },
      period: five,
      label: 'Target 5xx (% of requests)',
    });
    const loadBalancer5xx = props.loadBalancer.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, {
      period: five,
      statistic: cloudwatch.Stats.SUM,
      label: '5xx from the load balancer',
    });
    const failedJobs = app('atelier_jobs_finished_total', cloudwatch.Stats.SUM, Duration.minutes(15), { outcome: 'failed' });
    const spoolImages = app('atelier_spool_images', cloudwatch.Stats.MAXIMUM, five);
    const busyCalls = app('atelier_model_call_duration_seconds', cloudwatch.Stats.SAMPLE_COUNT, five, { outcome: 'busy' });
    const bedrockThrottles = new cloudwatch.MathExpression({
      // Every model id in the region (Bedrock publishes per ModelId): more than ten models, so a
      // Metrics Insights query rather than a sum of single metrics. Other applications of the
      // account in this region count too.
      expression: 'SELECT SUM(InvocationThrottles) FROM SCHEMA("AWS/Bedrock", ModelId)',
      period: five,
      label: 'Bedrock InvocationThrottles (all models)',
    });
    const dailySpend = app('atelier_estimated_spend_usd_total', cloudwatch.Stats.SUM, Duration.days(1));
    const scrapes = app('atelier_jobs_running', cloudwatch.Stats.SAMPLE_COUNT, five);
    const containerInsights = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName,
        dimensionsMap: { ClusterName: props.service.cluster.clusterName, ServiceName: props.service.serviceName },
        statistic: cloudwatch.Stats.AVERAGE,
        period: five,
      });
    const runningTasks = containerInsights('RunningTaskCount').with({ label: 'Running tasks' });
    const desiredTasks = containerInsights('DesiredTaskCount').with({ label: 'Desired tasks' });
    const missingTasks = new cloudwatch.MathExpression({
      expression: 'desired - running',
      usingMetrics: { desired: desiredTasks, running: runningTasks },
      period: five,
      label: 'Tasks short of the desired count',
    });

    // ── The alarms ─────────────────────────────────────────────────────────────────────────
    // treatMissingData is chosen for each: NOT_BREACHING where no data means nothing happened
    // (no traffic, no failure, no spend: the series only exist once something is counted),
    // BREACHING where no data is itself the problem.
    const target5xxAlarm = alarm('Target5xxRate', 'target-5xx-rate', {
      alarmDescription: `More than ${ALARM_THRESHOLDS.target5xxPercent}% of requests to the tasks answered 5xx in 5 minutes (counted from ${ALARM_THRESHOLDS.target5xxMinimumRequests} requests). The app is failing people: read the tasks' logs (level ERROR) for the cause. infra/README.md, "Alarms and dashboard".`,
      metric: target5xxRate,
      threshold: ALARM_THRESHOLDS.target5xxPercent,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No requests at all: nothing is failing.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm('LoadBalancer5xx', 'load-balancer-5xx', {
      alarmDescription: `The load balancer itself answered 5xx at least ${ALARM_THRESHOLDS.loadBalancer5xx} times in 5 minutes: no healthy task, tasks closing connections, or answers slower than its idle timeout. Check the service's running tasks and their health checks. infra/README.md, "Alarms and dashboard".`,
      metric: loadBalancer5xx,
      threshold: ALARM_THRESHOLDS.loadBalancer5xx,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // Published only when there are some.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const failedJobsAlarm = alarm('JobsFailing', 'jobs-failing', {
      alarmDescription: `At least ${ALARM_THRESHOLDS.failedJobs} image jobs failed for the operator's reasons (the store, model access, a bug; not people's mistakes or refusals) in 15 minutes. Read the tasks' log lines at level ERROR (each carries its job_id) and fix the cause; the jobs were refunded. infra/README.md, "Alarms and dashboard".`,
      metric: failedJobs,
      threshold: ALARM_THRESHOLDS.failedJobs,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      // The series appears with the first failure: none yet means none.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm('SpoolNotDraining', 'spool-not-draining', {
      alarmDescription: `A task has held images in its local spool for ${ALARM_THRESHOLDS.spoolMinutes} minutes: it cannot write to the images bucket. Check S3 and the task role; a task replaced now loses what its spool holds. infra/README.md, "Alarms and dashboard".`,
      metric: spoolImages,
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: ALARM_THRESHOLDS.spoolMinutes / 5,
      datapointsToAlarm: ALARM_THRESHOLDS.spoolMinutes / 5,
      // The gauge is reported every minute while metrics flow; their absence is MetricsMissing's.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm('ModelsBusy', 'models-busy', {
      alarmDescription: `At least ${ALARM_THRESHOLDS.busyModelCalls} model calls in each of two 5-minute periods ended busy (Bedrock throttled or overloaded, after the app's retries): people are being turned away. Raise the model quotas (Service Quotas, Amazon Bedrock) or lower bedrockImageConcurrency. infra/README.md, "Alarms and dashboard".`,
      metric: busyCalls,
      threshold: ALARM_THRESHOLDS.busyModelCalls,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      // The series appears with the first busy call.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm('BedrockThrottles', 'bedrock-throttles', {
      alarmDescription: `Bedrock throttled at least ${ALARM_THRESHOLDS.bedrockThrottles} invocations in each of two 5-minute periods (AWS/Bedrock InvocationThrottles, every model in this region, this account's other applications included). The app retries these; see ModelsBusy for those it gave up on. infra/README.md, "Alarms and dashboard".`,
      metric: bedrockThrottles,
      threshold: ALARM_THRESHOLDS.bedrockThrottles,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      // Bedrock publishes only when models are called.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const spendAlarm = alarm('DailySpend', 'daily-spend', {
      alarmDescription: `The app's estimate of its model spend over the last 24 hours is above ${props.dailySpendAlarmUsd} US dollars (dailySpendAlarmUsd). Look at spend by model on the dashboard and at who is generating (the quotas in the app's settings); the estimate comes from the app's price table, the bill from AWS Cost Explorer. infra/README.md, "Alarms and dashboard".`,
      metric: dailySpend,
      threshold: props.dailySpendAlarmUsd,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No spend, no series.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm('MetricsMissing', 'metrics-missing', {
      alarmDescription: `No task has reported its metrics for 15 minutes: the ${COLLECTOR_CONTAINER} container is failing in every task (its log stream in the tasks' log group says why), or the app is not serving /metrics. The other app alarms are blind meanwhile. infra/README.md, "Alarms and dashboard".`,
      metric: scrapes,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      // Missing is exactly what this alarm is about: the service always runs at least one task,
      // and every task reports its job line every minute.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    alarm('TasksBelowDesired', 'tasks-below-desired', {
      alarmDescription: `The service has run fewer tasks than it wants for 15 minutes: tasks fail to start or keep stopping. Read the service's events and the stopped tasks' reasons in the ECS console. infra/README.md, "Alarms and dashboard".`,
      metric: missingTasks,
      threshold: ALARM_THRESHOLDS.missingTasks,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      // Container Insights reports the service every minute; without it this says nothing.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // ── The dashboard ──────────────────────────────────────────────────────────────────────
    // Series split by a dimension are SEARCH expressions, so a new model or outcome shows up
    // without a change here.
    const quoted = JSON.stringify(namespace);
    // Each line is labelled with its dimensions' values (a dynamic label), not the expression.
    const search = (dimensions: string, metricName: string, statistic: string, period: Duration, filter = '', labelled = dimensions) =>
      new cloudwatch.SearchExpression({
        expression: `SEARCH('{${quoted},${dimensions}} MetricName="${metricName}"${filter}', '${statistic}', ${period.toSeconds()})`,
        label: labelled
          .split(',')
          .map((dimension) => `\${PROP('Dim.${dimension}')}`)
          .join(' '),
        period,
      });
    const minute = Duration.minutes(1);
    const hour = Duration.hours(1);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      // Dashboards are global to the account; the region keeps two stacks' apart.
      dashboardName: `${stack.stackName}-${stack.region}`,
      defaultInterval: Duration.hours(12),
    });
    this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 4 }));
    this.dashboard.addWidgets(
      new cloudwatch.AlarmWidget({ title: 'Target 5xx rate (%)', alarm: target5xxAlarm, width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'Requests and 5xx (5 minutes)',
        left: [requests],
        right: [target5xx, loadBalancer5xx],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Response time (seconds)',
        left: [
          props.targetGroup.metrics.targetResponseTime({ statistic: cloudwatch.Stats.p(50), label: 'p50' }),
          props.targetGroup.metrics.targetResponseTime({ statistic: cloudwatch.Stats.p(90), label: 'p90' }),
          props.targetGroup.metrics.targetResponseTime({ statistic: cloudwatch.Stats.p(99), label: 'p99' }),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Image jobs finished, by outcome (5 minutes)',
        left: [search('outcome', 'atelier_jobs_finished_total', 'Sum', five)],
        stacked: true,
        width: 8,
      }),
      new cloudwatch.AlarmWidget({ title: "Jobs failed for the operator's reasons (15 minutes)", alarm: failedJobsAlarm, width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'Job line: running and waiting (all tasks)',
        // Each task reports once a minute: the sum in a minute is the whole service's.
        left: [
          app('atelier_jobs_running', cloudwatch.Stats.SUM, minute).with({ label: 'running' }),
          app('atelier_jobs_waiting', cloudwatch.Stats.SUM, minute).with({ label: 'waiting' }),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Model calls, by operation and outcome (5 minutes)',
        left: [search('operation,outcome', 'atelier_model_call_duration_seconds', 'SampleCount', five)],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Model-call latency, answered calls (average seconds, retries included)',
        left: [search('operation,outcome', 'atelier_model_call_duration_seconds', 'Average', five, ' outcome="answered"', 'operation')],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Throttling: busy calls (app) and InvocationThrottles (Bedrock)',
        left: [busyCalls.with({ label: 'busy model calls (after retries)' })],
        right: [bedrockThrottles],
        leftAnnotations: [{ value: ALARM_THRESHOLDS.busyModelCalls, label: 'ModelsBusy' }],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Estimated spend by model (US dollars an hour)',
        left: [search('model', 'atelier_estimated_spend_usd_total', 'Sum', hour)],
        stacked: true,
        width: 12,
      }),
      new cloudwatch.AlarmWidget({ title: 'Estimated spend, last 24 hours (US dollars)', alarm: spendAlarm, width: 12 }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Spool: images and bytes waiting for the bucket (largest task)',
        left: [spoolImages.with({ period: minute, label: 'images' })],
        right: [app('atelier_spool_bytes', cloudwatch.Stats.MAXIMUM, minute).with({ label: 'bytes' })],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Store errors, by operation (5 minutes)',
        left: [search('operation', 'atelier_store_errors_total', 'Sum', five)],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: "Discord's rate-limit waits",
        left: [app('atelier_discord_rate_limit_wait_seconds', cloudwatch.Stats.SAMPLE_COUNT, five).with({ label: 'waits (5 minutes)' })],
        right: [app('atelier_discord_rate_limit_wait_seconds', cloudwatch.Stats.AVERAGE, five).with({ label: 'average wait (seconds)' })],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Tasks', left: [runningTasks, desiredTasks], width: 8 }),
      new cloudwatch.GraphWidget({
        title: 'CPU and memory (% of the tasks’)',
        left: [props.service.metricCpuUtilization({ label: 'CPU' }), props.service.metricMemoryUtilization({ label: 'memory' })],
        width: 8,
      }),
      new cloudwatch.GraphWidget({
        title: 'Metrics reported (scrapes, 5 minutes)',
        left: [scrapes.with({ label: 'job-line reports' })],
        width: 8,
      }),
    );
  }
}
