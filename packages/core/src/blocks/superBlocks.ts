import type { SuperBlock } from '../manifest/types.js';

/** The pages a super block holds, in frame order. */
export function pagesOf(sb: SuperBlock): number[] {
  if (sb.pages) return sb.pages;
  return Array.from({ length: sb.count }, (_, i) => sb.first + i);
}

/**
 * For each of a file's `pageCount` pages, the index of the super block holding its current
 * content: the last listed one that holds it (-1 when none does).
 */
export function pageOwners(superBlocks: SuperBlock[], pageCount: number): Int32Array {
  const owners = new Int32Array(pageCount).fill(-1);
  superBlocks.forEach((sb, i) => {
    for (const p of pagesOf(sb)) if (p < pageCount) owners[p] = i;
  });
  return owners;
}

/** Drops super blocks that hold no current page (all their pages changed since, or were truncated away). */
export function pruneSuperBlocks(superBlocks: SuperBlock[], pageCount: number): SuperBlock[] {
  const owners = pageOwners(superBlocks, pageCount);
  const used = new Set(owners);
  return superBlocks.filter((_, i) => used.has(i));
}
