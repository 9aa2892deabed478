import { z } from 'zod';

const MiB = 1024 * 1024;

/** Azure's container naming rule: 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric. */
const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The three ways to authenticate, each given literally or by the name of an environment variable. */
const SECRET_KEYS = [
  ['connectionString', 'connectionStringEnv'],
  ['accountKey', 'accountKeyEnv'],
  ['sasToken', 'sasTokenEnv'],
] as const;

const envName = z.string().regex(ENV_NAME, 'must be the name of an environment variable (letters, digits and _)');

export const azureConfigSchema = z
  .object({
    /** Container holding the repository; it must exist. */
    container: z.string().regex(CONTAINER_NAME, 'must be a container name: 3-63 lowercase letters, digits and single hyphens'),
    /** Folder-like prefix inside the container; objects go under `<prefix>/`. */
    prefix: z
      .string()
      .default('')
      .transform((p) => p.replace(/^\/+|\/+$/g, ''))
      .refine((p) => p === '' || p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), {
        message: 'must be a relative path without empty, "." or ".." segments',
      }),
    /** Storage account name (required with accountKey; names the default endpoint). */
    account: z.string().regex(ACCOUNT_NAME, 'must be a storage account name: 3-24 lowercase letters and digits').optional(),
    /** Blob service URL, e.g. https://acct.blob.core.usgovcloudapi.net or http://127.0.0.1:10000/devstoreaccount1 (Azurite). */
    endpoint: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL of the blob service' })
      .refine((u) => !u.includes('?'), 'must not carry a query string; put a SAS token in sasToken or sasTokenEnv')
      .transform((u) => u.replace(/\/+$/, ''))
      .optional(),
    connectionString: z.string().min(1).optional(),
    connectionStringEnv: envName.optional(),
    accountKey: z.string().min(1).optional(),
    accountKeyEnv: envName.optional(),
    sasToken: z.string().min(1).optional(),
    sasTokenEnv: envName.optional(),
    /** Access tier of new blobs (default: the account's default tier). */
    accessTier: z.enum(['Hot', 'Cool', 'Cold', 'Archive']).optional(),
    /** Bytes per staged block of a streamed upload; memory per upload is blockSize x uploadConcurrency. */
    blockSize: z
      .number()
      .int()
      .min(MiB, 'must be at least 1 MiB (1048576)')
      .max(100 * MiB, 'must be at most 100 MiB (104857600)')
      .default(4 * MiB),
    /** Blocks of one upload in flight at once. */
    uploadConcurrency: z.number().int().min(1).max(32).default(4),
    /** Seconds one HTTP request may take until its response starts (sending the body included). */
    timeout: z.number().positive().max(3600).default(60),
    /** Tries per HTTP request inside the Azure SDK (network errors, 500, 503), before Strata's own retries. */
    maxTries: z.number().int().min(1).max(10).default(3),
    /** Store tags as blob index tags (turn off for accounts with a hierarchical namespace, which lack them). */
    indexTags: z.boolean().default(true),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const chosen: string[] = [];
    for (const [literal, env] of SECRET_KEYS) {
      if (cfg[literal] !== undefined && cfg[env] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [env], message: `give ${literal} or ${env}, not both` });
      }
      if (cfg[literal] !== undefined || cfg[env] !== undefined) chosen.push(cfg[env] !== undefined ? env : literal);
      const name = cfg[env];
      if (name !== undefined && !process.env[name]) {
        ctx.addIssue({ code: 'custom', path: [env], message: `environment variable ${name} is not set (or empty)` });
      }
    }
    if (chosen.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          'no credentials: set exactly one of connectionString(Env), accountKey(Env) with account, or sasToken(Env) with account or endpoint',
      });
      return;
    }
    if (chosen.length > 1) {
      ctx.addIssue({ code: 'custom', path: [], message: `choose one way to authenticate, got ${chosen.join(' and ')}` });
      return;
    }
    const method = chosen[0]!;
    if (method.startsWith('connectionString')) {
      for (const key of ['account', 'endpoint'] as const) {
        if (cfg[key] !== undefined)
          ctx.addIssue({ code: 'custom', path: [key], message: `not used with ${method}: the connection string names it` });
      }
      const literal = cfg.connectionStringEnv ? process.env[cfg.connectionStringEnv] : cfg.connectionString;
      const problem = literal ? connectionStringProblem(literal) : undefined;
      if (problem) ctx.addIssue({ code: 'custom', path: [method], message: problem });
    } else if (method.startsWith('accountKey')) {
      if (cfg.account === undefined) ctx.addIssue({ code: 'custom', path: ['account'], message: `required with ${method}` });
    } else if (cfg.account === undefined && cfg.endpoint === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['endpoint'],
        message: `${method} needs account or endpoint to know where the blob service is`,
      });
    }
  });

export type AzureConfigInput = z.input<typeof azureConfigSchema>;
export type AzureConfig = z.output<typeof azureConfigSchema>;

/** How requests are signed, with the secret resolved. Never printed. */
export type AzureAuth = { kind: 'sharedKey'; account: string; key: string } | { kind: 'sas'; token: string };

export interface ResolvedAzure {
  /** Blob service URL without query, e.g. https://acct.blob.core.windows.net. */
  endpoint: string;
  /** Account name for messages. */
  account: string;
  auth: AzureAuth;
}

/** Azurite's well-known development account (public; used by UseDevelopmentStorage=true). */
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** Resolves environment references and the connection string into an endpoint and credentials. */
export function resolveAzure(cfg: AzureConfig, env: NodeJS.ProcessEnv = process.env): ResolvedAzure {
  const secret = (literal: string | undefined, name: string | undefined) => (name ? env[name] : literal);
  const connectionString = secret(cfg.connectionString, cfg.connectionStringEnv);
  if (connectionString) return fromConnectionString(connectionString);
  const accountKey = secret(cfg.accountKey, cfg.accountKeyEnv);
  const endpoint = cfg.endpoint ?? `https://${cfg.account}.blob.core.windows.net`;
  const account = cfg.account ?? accountFromEndpoint(endpoint);
  if (accountKey && cfg.account) return { endpoint, account, auth: { kind: 'sharedKey', account: cfg.account, key: accountKey } };
  const sasToken = secret(cfg.sasToken, cfg.sasTokenEnv);
  if (sasToken) return { endpoint, account, auth: { kind: 'sas', token: sasToken.replace(/^\?/, '') } };
  // The schema guarantees one method; reaching here means an env var vanished after validation.
  throw new Error('Azure credentials are not set: the environment variable named in the config is empty');
}

function parseConnectionString(cs: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of cs.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  return out;
}

/** What is wrong with a connection string, naming fields only (never values). */
function connectionStringProblem(cs: string): string | undefined {
  const f = parseConnectionString(cs);
  if (f.get('usedevelopmentstorage') === 'true') return undefined;
  if (!f.get('accountkey') && !f.get('sharedaccesssignature'))
    return 'the connection string has neither AccountKey nor SharedAccessSignature';
  if (!f.get('accountname') && !f.get('blobendpoint')) return 'the connection string has neither AccountName nor BlobEndpoint';
  if (f.get('accountkey') && !f.get('accountname')) return 'the connection string has an AccountKey but no AccountName';
  return undefined;
}

function fromConnectionString(cs: string): ResolvedAzure {
  const f = parseConnectionString(cs);
  if (f.get('usedevelopmentstorage') === 'true') {
    const endpoint = `http://127.0.0.1:10000/${DEV_ACCOUNT}`;
    return { endpoint, account: DEV_ACCOUNT, auth: { kind: 'sharedKey', account: DEV_ACCOUNT, key: DEV_KEY } };
  }
  const accountName = f.get('accountname');
  const endpoint = (
    f.get('blobendpoint') ??
    `${f.get('defaultendpointsprotocol') ?? 'https'}://${accountName}.blob.${f.get('endpointsuffix') ?? 'core.windows.net'}`
  ).replace(/\/+$/, '');
  const account = accountName ?? accountFromEndpoint(endpoint);
  const key = f.get('accountkey');
  if (key && accountName) return { endpoint, account, auth: { kind: 'sharedKey', account: accountName, key } };
  return { endpoint, account, auth: { kind: 'sas', token: (f.get('sharedaccesssignature') ?? '').replace(/^\?/, '') } };
}

/** "acct" from https://acct.blob.core.windows.net, or from the path of http://127.0.0.1:10000/acct (Azurite). */
function accountFromEndpoint(endpoint: string): string {
  const url = new URL(endpoint);
  const sub = /^([a-z0-9]+)\.blob\./.exec(url.hostname);
  if (sub) return sub[1]!;
  const first = url.pathname.split('/').find(Boolean);
  return first ?? url.host;
}
