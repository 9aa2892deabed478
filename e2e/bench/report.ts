import type { RestoreKind, RestoreSample } from './restore.js';
import { median } from './stats.js';

/** Table rows (same columns as the backup rows) for the restore measures; fills `summary`. */
export function restoreRows(samples: RestoreSample[], summary: Record<string, unknown>, rounds: number): string[] {
  const rows: string[] = [];
  for (const kind of ['restore', 'delta'] as RestoreKind[]) {
    for (const measure of ['wallSeconds', 'peakRssMiB'] as const) {
      const med = (tool: string) => median(samples.filter((s) => s.tool === tool && s.kind === kind).map((s) => s[measure]));
      const perRound = (other: string) =>
        Array.from({ length: rounds }, (_, i) => {
          const get = (tool: string) => samples.find((s) => s.tool === tool && s.kind === kind && s.round === i + 1)![measure];
          return get('strata') / get(other);
        });
      const vsBlock = median(perRound('pgbackrest-block'));
      const vsPlain = median(perRound('pgbackrest'));
      summary[`${kind}.${measure}`] = {
        strata: med('strata'),
        pgbackrestBlock: med('pgbackrest-block'),
        pgbackrest: med('pgbackrest'),
        ratioVsBlock: vsBlock,
        ratioVsPlain: vsPlain,
        ratiosPerRoundVsBlock: perRound('pgbackrest-block'),
        ratiosPerRoundVsPlain: perRound('pgbackrest'),
      };
      const fmt = (v: number) => (measure === 'wallSeconds' ? `${v.toFixed(2)} s` : `${v.toFixed(0)} MiB`);
      const label = kind === 'restore' ? 'full restore' : 'delta restore';
      rows.push(
        `| ${label} | ${measure} | ${fmt(med('strata'))} | ${fmt(med('pgbackrest-block'))} | ${fmt(med('pgbackrest'))} | ${vsBlock.toFixed(2)} | ${vsPlain.toFixed(2)} |`,
      );
    }
  }
  return rows;
}
