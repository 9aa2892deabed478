import * as path from 'node:path';
import type { StrataConfig } from '@strata/core';

export const UNIT_NAME = 'strata-agent.service';
export const UNIT_PATH = `/etc/systemd/system/${UNIT_NAME}`;

export interface UnitOptions {
  config: StrataConfig;
  configFile: string;
  user: string;
  group: string;
  /** The command line starting strata (absolute node, its flags, the bin script). */
  strata: string[];
  /** The state directory the agent will use. */
  stateDir: string;
}

/** Paths the agent (and the jobs it runs) write: data directories, socket dirs, fs repositories, state, scratch. */
export function writablePaths(o: UnitOptions): string[] {
  const out = new Set<string>();
  const configDir = path.dirname(o.configFile);
  for (const c of Object.values(o.config.clusters)) {
    out.add(c.pgdata);
    if (c.host.startsWith('/')) out.add(c.host);
    if (c.rehearsal.scratchDir) out.add(path.resolve(configDir, c.rehearsal.scratchDir));
  }
  for (const r of o.config.repos) {
    const p = (r as { path?: unknown }).path;
    if (r.plugin === 'fs' && typeof p === 'string') out.add(path.resolve(configDir, p));
  }
  out.add(o.stateDir);
  return [...out];
}

function quoteArg(s: string): string {
  // systemd's own quoting: double quotes with \ and " escaped; % doubled (specifier prefix).
  const v = s.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A hardened unit: read-only system, writable only where strata writes, no privilege gain. */
export function renderUnit(o: UnitOptions): string {
  const exec = [...o.strata, 'agent', '--config', o.configFile].map(quoteArg).join(' ');
  const stopTimeout = Math.ceil(o.config.agent.stopTimeout) + 30;
  const rw = writablePaths(o)
    .map((p) => `ReadWritePaths=-${quoteArg(p)}`)
    .join('\n');
  return `# Written by "strata service install"; remove with "strata service uninstall".
[Unit]
Description=Strata agent: scheduled PostgreSQL backups and restore rehearsals
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
Type=simple
User=${o.user}
Group=${o.group}
ExecStart=${exec}
ExecReload=/bin/kill -HUP $MAINPID
# SIGTERM to the agent only: it forwards it to running jobs and waits for them.
KillMode=mixed
TimeoutStopSec=${stopTimeout}
Restart=on-failure
RestartSec=10s
UMask=0027

NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
CapabilityBoundingSet=
AmbientCapabilities=
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
${rw}

[Install]
WantedBy=multi-user.target
`;
}
