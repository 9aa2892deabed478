import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { contextFlags, nodeFlags, shellQuote, strataCommandPrefix } from './self.js';

describe('how PostgreSQL calls strata', () => {
  it('runs the bin script with the node flags of its shebang', () => {
    expect(nodeFlags()).toEqual(['--max-semi-space-size=1']);
    const prefix = strataCommandPrefix();
    expect(prefix.startsWith(`${shellQuote(process.execPath)} --max-semi-space-size=1 `)).toBe(true);
    expect(prefix).toMatch(/\/packages\/agent\/bin\/run\.js$/);
  });

  it('reads no flags from a plain shebang', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'strata-self-')), 'run.js');
    fs.writeFileSync(file, '#!/usr/bin/env node\n');
    expect(nodeFlags(file)).toEqual([]);
  });

  it('quotes what the shell would split or expand', () => {
    expect(shellQuote('/etc/strata/strata.yaml')).toBe('/etc/strata/strata.yaml');
    expect(shellQuote("/tmp/it's here")).toBe(`'/tmp/it'\\''s here'`);
    expect(contextFlags('/a b/c.yaml', 'main')).toBe(`--config '/a b/c.yaml' --cluster main`);
  });
});
