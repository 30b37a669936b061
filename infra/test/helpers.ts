// Synthesising the stack in tests, with cdk.json's context as `cdk synth` would use it, and
// running our cfn-guard rules on a template.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { App } from 'aws-cdk-lib';

import { AtelierStack } from '../lib/atelier-stack';
import { readSettings } from '../lib/settings';

/** infra/, from build/test/. */
export const INFRA = path.resolve(__dirname, '..', '..');

const cdkJson = JSON.parse(fs.readFileSync(path.join(INFRA, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };

/**
 * What infra/check passes to `cdk synth` (an example account, a region, an image tag), and a
 * Discord client id, so that the stack the tests check has Sign in with Discord (infra/check
 * lints the stack without it as its defaults, and with it as every option). A test of the
 * stack without it passes `discordClientId: undefined`.
 */
export const TEST_CONTEXT = { account: '123456789012', region: 'us-east-1', imageTag: 'test', discordClientId: '123456789012345678' };

/** A CloudFormation template as plain JSON. */
export type TemplateJson = { Resources: Record<string, { Type: string; Properties?: any; Metadata?: any }>; Outputs?: any };

export interface Synthesised {
  readonly stack: AtelierStack;
  readonly template: TemplateJson;
}

/**
 * Synthesises the stack with cdk.json's context, the test context and `context`; `change`
 * may alter the stack first, as a careless edit of lib/ would.
 */
export function synth(context: Record<string, unknown> = {}, change?: (stack: AtelierStack) => void): Synthesised {
  // Path metadata (`aws:cdk:path`) as the CLI writes it: the invariants find resources by it.
  const all = { ...cdkJson.context, ...TEST_CONTEXT, 'aws:cdk:enable-path-metadata': true, ...context };
  const app = new App({ context: all, outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-cdk-')) });
  const settings = readSettings((key) => app.node.tryGetContext(key), {});
  const stack = new AtelierStack(app, 'Atelier', { settings });
  change?.(stack);
  const assembly = app.synth();
  const template = JSON.parse(fs.readFileSync(path.join(assembly.directory, stack.templateFile), 'utf8')) as TemplateJson;
  fs.rmSync(assembly.directory, { recursive: true, force: true });
  return { stack, template };
}

/** The resources of one type, by logical id. */
export function resourcesOfType(template: TemplateJson, type: string): [string, any][] {
  return Object.entries(template.Resources).filter(([, resource]) => resource.Type === type);
}

/** The cfn-guard binary that @cdklabs/cdk-validator-cfnguard ships (or $CFN_GUARD). */
export function guardBinary(): string {
  if (process.env.CFN_GUARD) return process.env.CFN_GUARD;
  const system = process.platform === 'darwin' ? 'macos' : 'ubuntu';
  const machine = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  return path.join(INFRA, 'node_modules', '@cdklabs', 'cdk-validator-cfnguard', 'bin', system, machine, 'cfn-guard');
}

export interface GuardResult {
  /** 0 when every rule passes, 19 when one fails (cfn-guard's own codes). */
  readonly status: number | null;
  readonly output: string;
  /** `file.guard/rule` for every rule that failed. */
  readonly failed: string[];
}

/** Runs every rule in infra/guard on a template. */
export function runGuard(template: TemplateJson): GuardResult {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'atelier-guard-'));
  const file = path.join(folder, 'template.json');
  fs.writeFileSync(file, JSON.stringify(template, null, 1));
  const run = spawnSync(guardBinary(), ['validate', '--rules', path.join(INFRA, 'guard'), '--data', file, '--show-summary', 'fail'], {
    encoding: 'utf8',
  });
  fs.rmSync(folder, { recursive: true, force: true });
  if (run.error) throw run.error;
  const output = `${run.stdout}${run.stderr}`;
  const failed = [...output.matchAll(/^(\S+\.guard\/\S+)\s+FAIL$/gm)].map((match) => match[1]);
  return { status: run.status, output, failed };
}
