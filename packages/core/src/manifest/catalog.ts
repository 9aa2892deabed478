import { keys } from '../repository/keys.js';
import type { Repo } from '../repository/Repo.js';
import type { Manifest } from './types.js';
import { LABEL_RE } from './label.js';

/** Labels of committed backups (those whose manifest exists), oldest first. */
export async function listBackupLabels(repo: Repo, cluster: string): Promise<string[]> {
  const root = keys.backupRoot(cluster);
  const labels: string[] = [];
  for await (const o of repo.list(root)) {
    const rest = o.key.slice(root.length);
    const [label, name, more] = rest.split('/');
    if (name === 'manifest' && more === undefined && label && LABEL_RE.test(label)) labels.push(label);
  }
  return labels.sort();
}

export function readManifest(repo: Repo, cluster: string, label: string): Promise<Manifest> {
  return repo.readSealed<Manifest>(keys.manifest(cluster, label), 'manifest');
}

/** Labels of interrupted backups: objects without a manifest. */
export async function listIncompleteLabels(repo: Repo, cluster: string): Promise<string[]> {
  const root = keys.backupRoot(cluster);
  const seen = new Map<string, boolean>();
  for await (const o of repo.list(root)) {
    const [label, name] = o.key.slice(root.length).split('/');
    if (!label) continue;
    seen.set(label, (seen.get(label) ?? false) || name === 'manifest');
  }
  return [...seen]
    .filter(([, done]) => !done)
    .map(([l]) => l)
    .sort();
}
