#!/usr/bin/env node
// The CDK app: one stack, parameterised by context (cdk.json and `-c name=value`).
// Synthesis is offline: the account and region are explicit and nothing is looked up.

import { App } from 'aws-cdk-lib';

import { AtelierStack } from '../lib/atelier-stack';
import { readSettings, SettingsError } from '../lib/settings';

const app = new App();
try {
  const settings = readSettings((key) => app.node.tryGetContext(key));
  const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'Atelier';
  new AtelierStack(app, stackName, {
    settings,
    description: 'Atelier: the Discord bot and web app on Fargate behind an ALB and CloudFront',
  });
  app.synth();
} catch (error) {
  if (error instanceof SettingsError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
