import { describe, expect, it } from 'vitest';
import type { SuperBlock } from '../manifest/types.js';
import { pageOwners, pagesOf, pruneSuperBlocks } from './superBlocks.js';

const sb = (first: number, count: number, extra: Partial<SuperBlock> = {}): SuperBlock => ({
  pack: 0,
  offset: 0,
  length: 1,
  first,
  count,
  ...extra,
});

describe('super blocks', () => {
  it('lists contiguous and sparse pages', () => {
    expect(pagesOf(sb(4, 3))).toEqual([4, 5, 6]);
    expect(pagesOf(sb(1, 3, { pages: [1, 7, 9] }))).toEqual([1, 7, 9]);
  });

  it('gives each page to the last super block holding it', () => {
    const blocks = [sb(0, 4), sb(4, 4), sb(1, 2, { pages: [1, 6] })];
    expect([...pageOwners(blocks, 8)]).toEqual([0, 2, 0, 0, 1, 1, 2, 1]);
    expect([...pageOwners(blocks, 10)].slice(8)).toEqual([-1, -1]);
  });

  it('drops super blocks whose pages all changed since or were cut off', () => {
    const blocks = [sb(0, 2), sb(2, 2), sb(0, 2, { backup: 'newer' }), sb(4, 2)];
    expect(pruneSuperBlocks(blocks, 4)).toEqual([blocks[1], blocks[2]]);
  });
});
